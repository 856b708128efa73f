# off by one: n steps per phase instead of n - 1 (2n·alpha + 2·N/B)
ALPHA_NVLINK = 5e-6   # s per message on NVLink (declared, not measured)
ALPHA_IB = 5e-6       # s per message on InfiniBand (declared, not measured)
# N in bytes, and each link's bandwidth in bytes/s per GPU, from the figures above
GRAD_BYTES = 7e9 * 2          # 7e9 gradients, bf16: 2 bytes each
NVLINK_BW = 450e9             # bytes/s per direction per GPU (H100, NVLink 4)
IB_BW = 400e9 / 8             # bytes/s per GPU: 400 Gb/s NDR is gigaBITS


def flat_ring_seconds(nbytes, n, alpha, bandwidth):
    return 2 * n * alpha + 2 * nbytes / bandwidth


def hierarchical_seconds(nbytes, nodes, gpus_per_node, intra, inter):
    g = gpus_per_node
    (alpha_in, bw_in), (alpha_out, bw_out) = intra, inter
    half = (g - 1) * alpha_in + (g - 1) / g * nbytes / bw_in    # reduce-scatter (= all-gather)
    return 2 * half + flat_ring_seconds(nbytes / g, nodes, alpha_out, bw_out)
