"""utils/environment.py: what every result row records about how it was produced."""
import shlex

from attn_ocgan.utils.environment import machine_description, script_command


def test_script_command_quotes_arguments_so_the_line_reruns_as_given():
    argv = ["--variant", '{"latent_channels": 8}', "--log", "a b.jsonl"]
    command = script_command("benchmarks/x.py", argv)
    assert command.startswith("python benchmarks/x.py ")
    assert shlex.split(command)[2:] == argv  # a shell splits it back into the same arguments


def test_machine_description_names_threads_and_torch():
    import torch

    text = machine_description()
    assert f"{torch.get_num_threads()} threads" in text and torch.__version__ in text and text.endswith("cpu")


def test_publish_benchmark_writes_the_result_with_its_provenance(tmp_path, capsys):
    import json

    from attn_ocgan.utils.environment import publish_benchmark

    out = tmp_path / "speed" / "x.json"
    returned = publish_benchmark({"img_per_s": 3.5}, "benchmarks/x.py", ["--blocks", "2"], str(out))
    written = json.loads(out.read_text())
    assert written == returned == json.loads(capsys.readouterr().out)
    assert written["img_per_s"] == 3.5 and written["command"] == "python benchmarks/x.py --blocks 2"
    assert "threads" in written["machine"] and written["date"][:2] == "20"
    publish_benchmark({"img_per_s": 1.0}, "benchmarks/x.py", [], "")  # no output file: printed only
    assert sorted(p.name for p in out.parent.iterdir()) == ["x.json"]
