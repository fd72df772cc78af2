"""Inception weights: resolution order, download from a local server, checksum, offline message,
strict loading, and one forward pass of the network on stand-in weights."""

import functools
import hashlib
import http.server
import socket
import threading
from pathlib import Path

import pytest
import torch

from gan.errors import UserError
from gan.metrics import inception


@pytest.fixture(scope="module")
def standin(tmp_path_factory):
    """Our architecture, randomly initialised, saved as a state dict (the real file's format)."""
    torch.manual_seed(0)
    net = inception.FIDInceptionV3()
    for m in net.modules():  # non-trivial batch-norm statistics so the forward pass is not degenerate
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    folder = tmp_path_factory.mktemp("standin")
    path = folder / inception.OFFICIAL_FILENAME
    torch.save(net.state_dict(), path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return path, digest, net.eval()


@pytest.fixture()
def server(standin):
    """A local HTTP server (127.0.0.1, in a thread) serving the stand-in's folder."""
    path = standin[0]
    handler = functools.partial(_QuietHandler, directory=str(path.parent))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/{path.name}", httpd
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    requests = 0

    def do_GET(self):
        type(self).requests += 1
        super().do_GET()

    def log_message(self, *args):
        pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(autouse=True)
def no_env(monkeypatch, tmp_path):
    monkeypatch.delenv(inception.ENV_VAR, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))


def test_cache_dir_follows_xdg(tmp_path):
    assert inception.cache_dir() == tmp_path / "xdg" / "stylegan-explorer"


def test_download_once_into_the_cache_with_checksum(standin, server, tmp_path):
    url, _ = server
    path, digest, _ = standin
    source = inception.WeightsSource(url=url, sha256_prefix=digest, cache=tmp_path / "cache", timeout=10)
    before = _QuietHandler.requests
    got = inception.resolve_weights(None, source)
    assert got == tmp_path / "cache" / inception.OFFICIAL_FILENAME
    assert got.read_bytes() == path.read_bytes()
    assert _QuietHandler.requests == before + 1
    assert list(got.parent.iterdir()) == [got]  # no partial files left behind
    # Second time: served from the cache, no request.
    assert inception.resolve_weights(None, source) == got
    assert _QuietHandler.requests == before + 1


def test_download_with_wrong_checksum_is_refused(standin, tmp_path):
    path, digest, _ = standin
    wrong = "0" * 8 if not digest.startswith("0" * 8) else "f" * 8
    source = inception.WeightsSource(url=path.as_uri(), sha256_prefix=wrong, cache=tmp_path / "cache")
    with pytest.raises(UserError, match="sha256"):
        inception.resolve_weights(None, source)
    assert not any((tmp_path / "cache").iterdir())


def test_offline_without_weights_says_what_to_do(tmp_path):
    url = f"http://127.0.0.1:{_free_port()}/{inception.OFFICIAL_FILENAME}"
    source = inception.WeightsSource(url=url, cache=tmp_path / "cache", timeout=5)
    with pytest.raises(UserError) as info:
        inception.resolve_weights(None, source)
    msg = str(info.value)
    assert "missing" in msg and url in msg
    assert str(tmp_path / "cache" / inception.OFFICIAL_FILENAME) in msg
    assert "--inception" in msg and inception.ENV_VAR in msg
    # The official URL is named when the default source is used without network access.
    with pytest.raises(UserError, match="pytorch-fid/releases"):
        inception.resolve_weights(None, inception.WeightsSource(cache=tmp_path / "c2", allow_download=False))


def test_explicit_path_and_env_var_come_first(standin, monkeypatch, tmp_path):
    path = standin[0]
    offline = inception.WeightsSource(allow_download=False, cache=tmp_path / "empty")
    assert inception.resolve_weights(path, offline) == path
    monkeypatch.setenv(inception.ENV_VAR, str(path))
    assert inception.resolve_weights(None, offline) == path
    with pytest.raises(UserError, match="does not exist"):
        inception.resolve_weights(tmp_path / "nope.pth", offline)


def test_strict_load_names_missing_and_unexpected_keys(tmp_path):
    bad = tmp_path / "bad.pth"
    state = inception.FIDInceptionV3().state_dict()
    del state["Mixed_7c.branch_pool.conv.weight"]
    state["AuxLogits.fc.weight"] = torch.zeros(3)
    torch.save(state, bad)
    with pytest.raises(UserError) as info:
        inception.load_inception(bad)
    assert "Mixed_7c.branch_pool.conv.weight" in str(info.value)
    assert "AuxLogits.fc.weight" in str(info.value)
    not_weights = tmp_path / "junk.pth"
    not_weights.write_bytes(b"not a torch file")
    with pytest.raises(UserError, match="cannot read"):
        inception.load_inception(not_weights)


def test_loaded_network_gives_2048_features(standin, tmp_path):
    path, digest, reference = standin
    net = inception.load_inception(path)
    assert net.sha256 == digest
    images = torch.randint(0, 256, (2, 3, 16, 16), dtype=torch.uint8)
    with torch.no_grad():
        feats = net(images)
        expected = reference(images)
    assert feats.shape == (2, 2048) and torch.isfinite(feats).all()
    torch.testing.assert_close(feats, expected)
    assert (feats >= 0).all()  # features are averages of ReLU outputs
    assert not torch.equal(feats[0], feats[1])  # the input matters (random weights blur it a lot)


def test_cached_file_with_a_wrong_digest_is_rejected(standin, tmp_path):
    path = standin[0]
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / inception.OFFICIAL_FILENAME).write_bytes(Path(path).read_bytes())
    with pytest.raises(UserError, match="Delete the file"):
        inception.load_inception(None, inception.WeightsSource(cache=cache, sha256_prefix="0123abcd"))
