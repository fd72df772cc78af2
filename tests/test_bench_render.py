"""bench.render's measuring function on a 16 px model: positive times, and the cached edit really
reuses the mapping and the stages before the edited ws while full renders reuse nothing."""

from __future__ import annotations

from bench.render import measure_latency
from gan.model_io import load_model
from tests.support.tiny import save_tiny


def test_measure_latency_tiny_sg3t(tmp_path):
    model = load_model(save_tiny(tmp_path / "tiny.safetensors", "stylegan3-t"), training_nets=False)
    # One thread: with two, a busy shared machine makes each small parallel op wait for a time slice.
    res = measure_latency(model, repeat=2, threads=1)

    assert (res.num_ws, res.threads) == (model.G.num_ws, 1)
    assert 0 < res.edit_layer_start < res.num_ws
    for stats in (res.full, res.edit):
        assert len(stats.ms) == len(stats.cache) == 2
        assert all(ms > 0 for ms in stats.ms + stats.mapping_ms + stats.synthesis_ms)
        assert stats.pct(95) >= stats.pct(50) > 0

    for info in res.full.cache:  # new seed each time: nothing cached
        assert (info.mapping_hits, info.mapping_misses, info.stages_reused) == (0, 1, 0)
        assert info.stages_run == info.stages_total > 0
    for info in res.edit.cache:  # same seed: mapping and early stages cached, later stages run
        assert (info.mapping_hits, info.mapping_misses) == (1, 0)
        assert 0 < info.stages_reused < info.stages_total
        assert info.stages_reused + info.stages_run == info.stages_total
