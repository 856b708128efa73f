"""The article's case 2 done right: LeNet-5 in two pipeline stages trains like one process."""
from __future__ import annotations

import sys

import pytest
import torch

import tplab
from tplab.digits import SIDE, TEST_ROWS, load_digits_32
from tplab.pp.lenet import BOUNDARY, accuracy, make_lenet, train_pipelined, train_single

EPOCHS = 1  # 22 steps of 64 digits: enough for the curves to part if anything is wrong


@pytest.fixture(scope="module")
def data():
    return load_digits_32()


@pytest.fixture(scope="module")
def reference(data):
    torch.set_num_threads(1)
    losses, model = train_single(data, epochs=EPOCHS)
    return losses, model


def test_digits_are_lenet_inputs_split_once(data):
    assert data.train_x.shape == (1797 - TEST_ROWS, 1, SIDE, SIDE)
    assert data.test_x.shape == (TEST_ROWS, 1, SIDE, SIDE)
    assert data.train_x.dtype == torch.float32 and data.train_y.dtype == torch.int64
    assert set(data.train_y.tolist()) == set(range(10)) == set(data.test_y.tolist())
    assert abs(data.train_x.mean().item()) < 1e-4 and abs(data.train_x.std().item() - 1) < 1e-4
    again = load_digits_32()
    assert torch.equal(again.test_x, data.test_x) and torch.equal(again.train_y, data.train_y)
    other = load_digits_32(seed=1)
    assert not torch.equal(other.test_y, data.test_y)
    # the two parts are one permutation of all 1,797 digits: every class count adds up
    counts = torch.cat([data.train_y, data.test_y]).bincount()
    assert torch.equal(counts, torch.cat([other.train_y, other.test_y]).bincount())


def test_missing_scikit_learn_is_the_course_data_set_error(monkeypatch):
    # one DataSetError for every course data set: catching it catches the SMS texts' too
    from tplab import sms_spam
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)   # import fails
    with pytest.raises(sms_spam.DataSetError, match="scikit-learn"):
        load_digits_32()


def test_batches_are_seeded_per_epoch(data):
    a, b = data.batches(64, 0), data.batches(64, 0)
    assert len(a) == len(data.train_y) // 64 and all(x.shape[0] == 64 for x, _ in a)
    assert all(torch.equal(xa, xb) for (xa, _), (xb, _) in zip(a, b))
    assert not torch.equal(a[0][1], data.batches(64, 1)[0][1])


def test_lenet_stages_are_the_model_cut_in_two():
    model = make_lenet(0)
    x = torch.randn(3, 1, SIDE, SIDE)
    features, classifier = model.stages()
    assert features(x).shape == (3, BOUNDARY)
    assert torch.equal(classifier(features(x)), model(x))
    assert {id(t) for t in model.parameters()} == \
        {id(t) for s in model.stages() for t in s.parameters()}
    assert torch.equal(make_lenet(0).features[0].weight, model.features[0].weight)


def test_single_process_learns(reference, data):
    losses, model = reference
    assert losses[-1] < 0.6 * losses[0]
    assert accuracy(model, data.test_x, data.test_y) > 0.5


@pytest.mark.parametrize("name,m", [("1f1b", 4), ("gpipe", 8)])
def test_pipelined_training_and_inference_equal_one_process(reference, data, name, m):
    losses, model = reference
    got = tplab.launch(train_pipelined, 2, data, name, m, EPOCHS, backend="gloo", timeout=60)
    assert got[0]["losses"] is None and got[0]["accuracy"] is None
    curve = got[1]["losses"]
    assert len(curve) == len(losses)
    assert max(abs(a - b) for a, b in zip(curve, losses)) < 1e-5
    full = model.state_dict()
    for rank, prefix in enumerate(("features.", "classifier.")):
        for k, v in got[rank]["state"].items():
            torch.testing.assert_close(v, full[prefix + k], rtol=1e-5, atol=1e-5)
    with torch.no_grad():
        logits = model(data.test_x)
    torch.testing.assert_close(got[1]["logits"], logits, rtol=1e-4, atol=1e-4)
    assert got[1]["accuracy"] == accuracy(model, data.test_x, data.test_y)


def test_lenet_wants_two_ranks_and_equal_micro_batches(data):
    with pytest.raises(tplab.WorkerError, match="2 ranks"):
        tplab.launch(train_pipelined, 3, data, "gpipe", 4, backend="gloo", timeout=30)
    with pytest.raises(tplab.WorkerError, match="equal micro-batches"):
        tplab.launch(train_pipelined, 2, data, "gpipe", 5, backend="gloo", timeout=30)
