"""bench.equivariance on 16 px generators with few samples: the table and the written section."""

import math

from bench.equivariance import format_table, generator_kwargs, main, measure


def test_measure_and_table():
    sg2 = measure("stylegan2", dict(generator_kwargs("stylegan2", 16, "small"), channel_base=256), num=4)
    sg3 = measure("stylegan3-t", dict(generator_kwargs("stylegan3-t", 16, "small"), channel_base=512), num=4)
    for row in (sg2, sg3):
        assert set(row.eq) == {"eqt_int", "eqt_frac", "eqr"} and row.power > 0 and row.params > 0
        assert math.isclose(row.relative("eqr"), row.eq["eqr"] - 10 * math.log10(4 / row.power))
    assert sg3.eq["eqt_frac"] > sg2.eq["eqt_frac"] + 20
    table = format_table([sg2, sg3])
    assert "| SG2 16 px, cbase 256, cmax 64, z/w 128 |" in table and table.count("\n") == 3


def test_cli_writes_the_section(monkeypatch, tmp_path, capsys):
    import bench.common

    doc = tmp_path / "benchmarks.md"
    monkeypatch.setattr(bench.common, "BENCH_DOC", doc)
    assert main(["--num", "2", "--res", "16", "--archs", "stylegan2", "--write"]) == 0
    text = doc.read_text()
    assert "## Equivariance of random generators, 16 px, small channels" in text
    assert "`python -m bench.equivariance --num 2 --res 16 --archs stylegan2 --write`" in text
    assert "| SG2 16 px" in text and "| SG3-T" not in text and "1 threads" in text
    assert "| SG2 16 px" in capsys.readouterr().out
