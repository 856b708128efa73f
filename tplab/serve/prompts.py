"""The prompts of lesson 06's workload: plain data, written for this course.

Why written here: a serving workload needs requests of different sizes, from a few words to a
paragraph, so that prefill costs differ as well as answer lengths; and it must be the same on
every machine, with nothing to download. The first eight are lesson 05's serving prompts
(`tplab.pp.serving.SERVING_PROMPTS`), so the two lessons' numbers are about the same requests.
"""
from __future__ import annotations

from tplab.pp.serving import SERVING_PROMPTS

__all__ = ["PROMPTS"]

PROMPTS: list[str] = [*SERVING_PROMPTS,
    "Hi!",
    "Translate 'good morning' into Spanish.",
    "What is 17 times 3?",
    "Give me a synonym for 'fast'.",
    "Is a tomato a fruit or a vegetable?",
    "Suggest a name for a grey cat.",
    "What year did the first person walk on the Moon?",
    "Define the word 'latency' for a ten-year-old.",
    "Write one sentence that uses the words river, lamp and Tuesday.",
    "What is the difference between a list and a tuple in Python?",
    "Summarise the plot of Romeo and Juliet in two sentences.",
    "Give three tips for writing clear emails at work.",
    "Why do we have leap years?",
    "Explain what a queue is, and give one example from daily life.",
    "Write a short poem about a train that is always late.",
    "How does a bicycle stay upright when it is moving?",
    "I want to learn to cook. Which three simple dishes should I start with, and why?",
    "My laptop fan is loud whenever I open many browser tabs. What is happening, and what can I "
    "do about it?",
    "A shop sells pens at 2 dollars each or a box of 12 for 20 dollars. I need 30 pens. What is "
    "the cheapest way to buy them?",
    "Explain to a new colleague why we write unit tests, in a friendly tone, with one short "
    "example in Python.",
    "Write a short story opening: a lighthouse keeper finds a letter in a bottle addressed to "
    "her, dated fifty years in the future.",
    "Here is my plan for the weekend: clean the flat on Saturday morning, visit my parents in "
    "the afternoon, go running on Sunday and then read. Is this too much? Suggest a better "
    "order if there is one.",
    "Compare trains and planes for a 600 km trip: think about time, cost, comfort and the "
    "environment, and then recommend one.",
    "You are a tour guide in Paris. Describe a one-day walking route that passes three famous "
    "places, and say what to see at each.",
    "A restaurant kitchen has one oven and orders keep arriving: some dishes take two minutes, "
    "some take forty. In what order should the cook put them in the oven so that customers "
    "wait as little as possible on average? Explain your reasoning.",
    "Write a polite message to a neighbour asking them to keep the shared staircase free of "
    "bicycles, because it is hard to carry shopping past them. Keep it short and kind.",
    "Explain how a library lends books: what happens when you borrow one, when you return it "
    "late, and when someone else has reserved it. Use simple words.",
    "Describe the water cycle step by step: evaporation, condensation, precipitation and "
    "collection. For each step, say where the energy comes from.",
]
