"""`nnviz bench` runs and reports; speed targets live in benchmarks/, not in tests."""
import json

from nnviz.cli import main


def test_bench_quick_mlp_json(capsys):
    rc = main(["bench", "--quick", "--only", "mlp", "--json", "--no-torch"])
    assert rc == 0
    out = capsys.readouterr().out.strip().splitlines()[-1]
    result = json.loads(out)
    rows = result["results"]
    assert [r["name"] for r in rows] == ["mlp-b10", "mlp-b32"]
    for r in rows:
        assert "error" not in r, r.get("error")
        assert r["nnviz"] > 0
        assert r["pytorch"] is None  # --no-torch
    assert result["machine"]["cores"] >= 1


def test_bench_unknown_name(capsys):
    assert main(["bench", "--only", "nosuch", "--no-torch"]) == 2
