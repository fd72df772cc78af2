"""bench.conv_transpose times every StyleGAN2 upsampling shape both ways and reports equal outputs."""

from __future__ import annotations

from bench import conv_transpose


def test_reports_every_layer_with_equal_outputs(capsys):
    assert conv_transpose.main(["--repeat", "1"]) == 0
    rows = [
        line for line in capsys.readouterr().out.splitlines() if line.startswith("| ") and " px |" in line
    ]
    assert len(rows) == len(conv_transpose.LAYERS)
    assert all(float(row.split("|")[-2]) < 1e-3 for row in rows)  # max diff column
