"""Integrity of our model format: the stored content digest, NaN / wrongly typed weights, hostile
headers (deep JSON, settings describing a huge network), and files from before the digest."""

from __future__ import annotations

import json
import struct

import pytest
import safetensors
import safetensors.torch
import torch

from gan.errors import ModelLoadError
from gan.io import safetensors_format as fmt
from gan.model_io import load_model, save_model
from tests.support.tiny import make_plain_generator


def header_of(path) -> tuple[dict, int]:
    data = open(path, "rb").read()
    (n,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8 : 8 + n]), 8 + n


def rewrite(src, dst, edit_tensors=None, edit_header=None, keep_digest=True):
    """Copy model file src to dst with tensors / string metadata changed. The stored digest is
    copied as it was (so it no longer matches) unless keep_digest=False drops it (an old file)."""
    with safetensors.safe_open(str(src), "pt") as f:
        header = dict(f.metadata())
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    if edit_tensors:
        edit_tensors(tensors)
    if edit_header:
        edit_header(header)
    if not keep_digest:
        header.pop(fmt.DIGEST_KEY, None)
    dst.write_bytes(safetensors.torch.save(tensors, metadata=header))
    return dst


def flip_data_byte(src, dst, offset_in_data: int = 0) -> None:
    data = bytearray(open(src, "rb").read())
    _, start = header_of(src)
    data[start + offset_in_data] ^= 0x01  # lowest mantissa bit of the first float32: still finite
    dst.write_bytes(bytes(data))


def test_saved_files_carry_a_digest_that_is_checked(tmp_path, tiny_sg2_model_path):
    header, _ = header_of(tiny_sg2_model_path)
    assert len(header["__metadata__"][fmt.DIGEST_KEY]) == 64
    model = load_model(tiny_sg2_model_path)
    assert model.sha256 == __import__("hashlib").sha256(open(tiny_sg2_model_path, "rb").read()).hexdigest()

    bad = tmp_path / "flipped.safetensors"
    flip_data_byte(tiny_sg2_model_path, bad)
    with pytest.raises(ModelLoadError, match="do not match the digest.*verify=False"):
        load_model(bad)
    salvaged = load_model(bad, verify=False)  # the flag skips the comparison
    a, b = salvaged.G.state_dict(), model.G.state_dict()
    assert sum(not torch.equal(a[k], b[k]) for k in a) == 1


def test_the_digest_covers_the_header_too(tmp_path, tiny_sg2_model_path):
    def edit(header):
        meta = json.loads(header["metadata"])
        meta["note"] = "changed"
        header["metadata"] = json.dumps(meta)

    bad = rewrite(tiny_sg2_model_path, tmp_path / "meta.safetensors", edit_header=edit)
    with pytest.raises(ModelLoadError, match="digest"):
        load_model(bad)


def test_a_damaged_digest_name_does_not_turn_the_check_off(tmp_path, tiny_sg2_model_path):
    # Found by the fuzz suite: one flipped bit in the key's name made the file look like one
    # written before digests existed, so flipped tensor data loaded.
    def rename(header):
        header["conten|_sha256"] = header.pop(fmt.DIGEST_KEY)

    bad = rewrite(tiny_sg2_model_path, tmp_path / "renamed.safetensors", edit_header=rename)
    with pytest.raises(ModelLoadError, match=r"unknown entries \['conten\|_sha256'\] and no content digest"):
        load_model(bad)


def test_files_without_a_digest_still_load(tmp_path, tiny_sg2_model_path):
    old = rewrite(tiny_sg2_model_path, tmp_path / "old.safetensors", keep_digest=False)
    assert fmt.DIGEST_KEY not in header_of(old)[0]["__metadata__"]
    a, b = load_model(old).G.state_dict(), load_model(tiny_sg2_model_path).G.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_weights_are_refused(tmp_path, value):
    G = make_plain_generator("stylegan2").requires_grad_(False)
    with torch.no_grad():
        G.synthesis.b8.conv0.weight[0, 0, 0, 0] = value
    path = tmp_path / "nan.safetensors"
    save_model(path, G)  # a correct digest: the values themselves are refused
    with pytest.raises(ModelLoadError, match=r"NaN or infinite values \(synthesis\.b8\.conv0\.weight\)"):
        load_model(path)


def test_integer_data_where_floats_belong_is_refused(tmp_path, tiny_sg2_model_path):
    def to_int(tensors):
        w = tensors["G_ema.synthesis.b8.conv0.weight"]
        tensors["G_ema.synthesis.b8.conv0.weight"] = w.view(torch.int32).clone()  # same bytes, I32

    for keep in (True, False):
        bad = rewrite(tiny_sg2_model_path, tmp_path / f"i32-{keep}.safetensors", to_int, keep_digest=keep)
        with pytest.raises(ModelLoadError, match=r"wrong number type: synthesis\.b8\.conv0\.weight \(I32"):
            load_model(bad)


@pytest.mark.parametrize("key", ["config", "metadata"])
def test_deeply_nested_header_json_is_refused_cleanly(tmp_path, tiny_sg2_model_path, key):
    deep = "[" * 100_000 + "]" * 100_000

    def edit(header):
        header[key] = deep if key == "config" else '{"note": "[[[", "y": ' + deep + "}"

    bad = rewrite(tiny_sg2_model_path, tmp_path / "deep.safetensors", edit_header=edit)
    with pytest.raises(ModelLoadError, match=r"nested 10000[01] levels deep"):
        load_model(bad)


def test_json_depth_ignores_brackets_in_strings():
    assert fmt.json_depth('{"a": [[1, 2], {"b": "[[[[{{{"}]}') == 3
    assert fmt.json_depth('"[[[" ') == 0
    assert fmt.json_depth(r'{"a": "x\"[[[", "b": [1]}') == 2


def test_settings_for_a_huge_network_are_refused_before_allocating(tmp_path, tiny_sg2_model_path):
    def huge(header):
        config = json.loads(header["config"])
        config["networks"]["G_ema"]["kwargs"]["w_dim"] = 200_000  # 160 GB of mapping weights
        header["config"] = json.dumps(config)

    bad = rewrite(tiny_sg2_model_path, tmp_path / "huge.safetensors", edit_header=huge)
    with pytest.raises(ModelLoadError, match="far bigger than the weights the file holds"):
        load_model(bad)

    def deep(header):
        config = json.loads(header["config"])
        config["networks"]["G_ema"]["kwargs"]["mapping_kwargs"]["num_layers"] = 10**6
        header["config"] = json.dumps(config)

    bad = rewrite(tiny_sg2_model_path, tmp_path / "deep-mapping.safetensors", edit_header=deep)
    with pytest.raises(ModelLoadError, match="far bigger than the weights the file holds"):
        load_model(bad)


def test_constructor_errors_of_any_kind_become_model_load_errors(tmp_path, tiny_sg2_model_path):
    def negative(header):
        config = json.loads(header["config"])
        config["networks"]["G_ema"]["kwargs"]["channel_base"] = -256
        header["config"] = json.dumps(config)

    bad = rewrite(tiny_sg2_model_path, tmp_path / "negative.safetensors", edit_header=negative)
    with pytest.raises(ModelLoadError, match="G_ema"):
        load_model(bad)
