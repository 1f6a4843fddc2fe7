"""GAN training: exact resume, callbacks, options, the CLI, and a real learning check."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image

from stylecore.cli import main
from stylecore.gan import TrainConfig, latest_checkpoint, train_gan
from stylecore.gan.data import ImageCollection
from stylecore.gan.inference import cyclegan_transfer
from stylecore.io import load_image, save_image

# The toy collections are deliberately tiny.
pytestmark = pytest.mark.filterwarnings("ignore::stylecore.gan.data.SmallCollectionWarning")


@pytest.fixture(autouse=True)
def _one_thread():
    # Small convolutions on a loaded 2-core machine spend most of their time in
    # OpenMP spin-waits with 2 threads.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def toy_domains(tmp_path_factory):
    """Three folders of 6 random smooth 40×40 images with different colour casts."""
    root = tmp_path_factory.mktemp("toy")
    gen = torch.Generator().manual_seed(0)
    casts = {"a": (1.0, 1.0, 1.0), "b": (1.0, 0.6, 0.3), "c": (0.3, 0.6, 1.0)}
    for name, cast in casts.items():
        (root / name).mkdir()
        for i in range(6):
            x = torch.rand(1, 3, 5, 5, generator=gen)
            x = torch.nn.functional.interpolate(x, size=(40, 40), mode="bilinear")
            x = x * torch.tensor(cast).view(1, 3, 1, 1)
            save_image(x, root / name / f"{i}.png")
    return root


def _cfg(**kw):
    base = dict(size=32, iters=6, batch_size=1, ngf=4, ndf=4, n_blocks=2, pool_size=3,
                sample_every=0, checkpoint_every=0, progress_bar=False, deterministic=True)
    base.update(kw)
    return TrainConfig(**base)


class TestExactResume:
    @pytest.mark.parametrize("model", ["cyclegan", "conditional"])
    def test_stop_and_resume_equals_uninterrupted(self, toy_domains, tmp_path, model):
        """Stopping after 3 of 6 iterations and resuming gives bit-identical losses."""
        doms = {n: toy_domains / n for n in (("a", "b") if model == "cyclegan" else "abc")}
        full = train_gan(_cfg(model=model), doms, tmp_path / "full")
        polls = iter(range(100))
        part = train_gan(_cfg(model=model), doms, tmp_path / "part",
                         should_stop=lambda: next(polls) >= 3)
        assert part.stopped and part.iteration == 3 and not part.finished
        # Scramble every global RNG to show the checkpoint restores them.
        torch.manual_seed(123)
        resumed = train_gan(_cfg(model=model), doms, tmp_path / "part")
        assert resumed.resumed_from == 3 and resumed.finished and not resumed.stopped
        assert resumed.losses == full.losses
        # Not trivially equal: another seed gives other losses.
        other = train_gan(_cfg(model=model, seed=1), doms, tmp_path / "other")
        assert other.losses != full.losses

    def test_crash_resumes_from_periodic_checkpoint(self, toy_domains, tmp_path):
        doms = [toy_domains / "a", toy_domains / "b"]
        full = train_gan(_cfg(), doms, tmp_path / "full")

        def crash(p):
            if p.iteration == 5:
                raise RuntimeError("worker died")

        with pytest.raises(RuntimeError, match="worker died"):
            train_gan(_cfg(checkpoint_every=2, log_every=1), doms, tmp_path / "crash",
                      progress=crash)
        assert latest_checkpoint(tmp_path / "crash") is not None
        resumed = train_gan(_cfg(checkpoint_every=2), doms, tmp_path / "crash")
        assert resumed.resumed_from == 4
        assert resumed.losses == full.losses
        lines = (tmp_path / "crash" / "losses.jsonl").read_text().splitlines()
        assert [json.loads(x)["iteration"] for x in lines] == [1, 2, 3, 4, 5, 6]

    def test_incompatible_resume_rejected(self, toy_domains, tmp_path):
        doms = [toy_domains / "a", toy_domains / "b"]
        train_gan(_cfg(iters=1), doms, tmp_path / "run")
        with pytest.raises(ValueError, match="ngf: 4 -> 8"):
            train_gan(_cfg(iters=2, ngf=8), doms, tmp_path / "run")
        with pytest.raises(ValueError, match="trained on domains"):
            train_gan(_cfg(iters=2), [toy_domains / "a", toy_domains / "c"], tmp_path / "run")
        fresh = train_gan(_cfg(iters=2, ngf=8), doms, tmp_path / "run", resume=False)
        assert fresh.resumed_from == 0 and fresh.iteration == 2


class TestTrainingRun:
    def test_outputs_and_progress(self, toy_domains, tmp_path):
        seen = []
        r = train_gan(_cfg(iters=4, sample_every=2, checkpoint_every=2, log_every=1),
                      [toy_domains / "a", toy_domains / "b"], tmp_path, progress=seen.append)
        assert [p.iteration for p in seen][:4] == [1, 2, 3, 4]
        assert seen[-1].iteration == 4 and seen[-1].total == 4 and seen[-1].checkpoint
        assert all(p.seconds_per_iter > 0 for p in seen)
        assert seen[1].sample_grid == tmp_path / "samples" / "iter_0000002.png"
        grid = Image.open(seen[1].sample_grid)
        # 6 rows (A, A→B, A→B→A, B, B→A, B→A→B) of 4 images, 2-px padding
        assert grid.size == (4 * 34 + 2, 6 * 34 + 2)
        assert set(r.generators) == {"A2B", "B2A"}
        assert r.loss_curve("cycle_A").shape == (4,)
        assert "finished at iteration 4/4" in r.summary()
        # Linear decay after half the iterations (CycleGAN): factor 1 - (4 - 2) / (4 - 2 + 1).
        ckpt = torch.load(r.checkpoint, weights_only=True)
        for opt in ckpt["trainer"]["optimizers"].values():
            assert opt["param_groups"][0]["lr"] == pytest.approx(2e-4 / 3)
        # The training checkpoint serves both directions, picked by domain name.
        x = torch.rand(1, 3, 32, 32)
        to_a = cyclegan_transfer(x, r.checkpoint, target_culture="a")
        torch.testing.assert_close(to_a, cyclegan_transfer(x, r.generators["B2A"]))
        torch.testing.assert_close(cyclegan_transfer(x, r.checkpoint, target_culture="b"),
                                   cyclegan_transfer(x, r.generators["A2B"]))
        assert (to_a - cyclegan_transfer(x, r.generators["A2B"])).abs().max() > 0

    @pytest.mark.parametrize("model,gan_loss,sn", [("cyclegan", "hinge", True),
                                                   ("cyclegan", "nonsaturating", False),
                                                   ("conditional", "hinge", True)])
    def test_gan_variants_train(self, toy_domains, tmp_path, model, gan_loss, sn):
        doms = [toy_domains / n for n in ("ab" if model == "cyclegan" else "abc")]
        r = train_gan(_cfg(model=model, iters=3, gan_loss=gan_loss, spectral_norm=sn),
                      doms, tmp_path)
        assert r.finished and all(v == v for v in r.losses[-1].values())

    def test_file_lists_by_culture(self, toy_domains, tmp_path):
        """A study's style images arrive as {culture: [files]}; names become the labels."""
        doms = {"photo": sorted((toy_domains / "a").glob("*.png")),
                "ink": sorted((toy_domains / "b").glob("*.png"))[:4],
                "ukiyoe": sorted((toy_domains / "c").glob("*.png"))}
        r = train_gan(_cfg(model="conditional", iters=1), doms, tmp_path)
        assert r.domains == ["photo", "ink", "ukiyoe"] and r.finished

    def test_amp_on_cpu(self, toy_domains, tmp_path):
        r = train_gan(_cfg(iters=2, amp=True), [toy_domains / "a", toy_domains / "b"], tmp_path)
        assert r.finished

    def test_bad_settings(self, toy_domains, tmp_path):
        with pytest.raises(ValueError, match="multiple of 4"):
            TrainConfig(size=30)
        with pytest.raises(ValueError, match="gan_loss"):
            TrainConfig(gan_loss="wgan")
        with pytest.raises(ValueError, match="2 collections"):
            train_gan(_cfg(), [toy_domains / "a"], tmp_path)
        (tmp_path / "empty").mkdir()
        with pytest.raises(ValueError, match="empty"):
            train_gan(_cfg(), [toy_domains / "a", tmp_path / "empty"], tmp_path / "o")


class TestCLI:
    def test_train_then_extend(self, toy_domains, tmp_path, capsys):
        args = ["train", "cyclegan", "--domain-a", str(toy_domains / "a"), "--domain-b",
                str(toy_domains / "b"), "--out", str(tmp_path), "--size", "32", "--ngf", "4",
                "--ndf", "4", "--n-blocks", "1", "--quiet", "--sample-every", "2"]
        assert main([*args, "--iters", "3"]) == 0
        assert "finished at iteration 3/3" in capsys.readouterr().out
        assert (tmp_path / "G_A2B.pth").is_file() and (tmp_path / "samples" / "iter_0000002.png").is_file()
        assert main([*args, "--iters", "5"]) == 0
        assert len((tmp_path / "losses.jsonl").read_text().splitlines()) == 5

    def test_conditional(self, toy_domains, tmp_path, capsys):
        code = main(["train", "conditional", "--domain-a", str(toy_domains / "a"),
                     "--domains", f"ink={toy_domains / 'b'}", f"ukiyoe={toy_domains / 'c'}",
                     "--out", str(tmp_path), "--size", "32", "--iters", "2", "--ngf", "4",
                     "--ndf", "4", "--n-blocks", "1", "--quiet"])
        assert code == 0
        assert "generator conditional" in capsys.readouterr().out
        x = torch.rand(1, 3, 32, 32)
        assert cyclegan_transfer(x, tmp_path / "generator_conditional.pt",
                                 target_culture="ukiyoe").shape == x.shape

    def test_errors(self, toy_domains, tmp_path, capsys):
        assert main(["train", "cyclegan", "--domain-a", str(toy_domains / "a"),
                     "--out", str(tmp_path)]) == 1
        assert "--domain-b" in capsys.readouterr().err
        assert main(["train", "cyclegan", "--domain-a", str(toy_domains / "a"), "--domain-b",
                     str(tmp_path / "missing"), "--out", str(tmp_path), "--size", "32"]) == 1
        assert "missing" in capsys.readouterr().err


def _tone(x: torch.Tensor) -> torch.Tensor:
    """The toy 'target culture': sepia toning with lifted blacks and lower contrast."""
    sepia = torch.tensor([[0.393, 0.769, 0.189], [0.349, 0.686, 0.168], [0.272, 0.534, 0.131]])
    return (0.15 + 0.7 * torch.einsum("ij,bjhw->bihw", sepia, x).clamp(0, 1)).clamp(0, 1)


def _colour_stats(x: torch.Tensor) -> torch.Tensor:
    """Per-channel mean and standard deviation over a set of images: 6 numbers."""
    return torch.cat([x.mean((0, 2, 3)), x.std((0, 2, 3))])


@pytest.mark.slow
def test_cyclegan_learns_a_colour_transform(samples_dir, tmp_path):
    """Photos → sepia-toned photos, unpaired: after 150 iterations G_AB's outputs are far
    closer to domain B than the photos themselves, and the cycle error has fallen."""
    photos = sorted(p for p in (samples_dir / "content").iterdir() if p.suffix in (".jpg", ".png"))
    assert len(photos) >= 6
    for d in ("photo", "toned"):
        (tmp_path / d).mkdir()
    for i, f in enumerate(photos):
        x = load_image(f, max_side=72)
        save_image(x, tmp_path / "photo" / f"{i}.png")
        save_image(_tone(x), tmp_path / "toned" / f"{i}.png")
    cfg = TrainConfig(size=32, iters=150, batch_size=4, lr=1e-3, ngf=8, ndf=8, n_blocks=6,
                      sample_every=0, checkpoint_every=0, progress_bar=False, seed=0)
    r = train_gan(cfg, [tmp_path / "photo", tmp_path / "toned"], tmp_path / "run")

    a = ImageCollection(tmp_path / "photo", cfg.load_size, min_images=1).center_crops(32)
    b = _tone(a)  # the true domain-B counterparts (never seen as pairs in training)
    fake_b = cyclegan_transfer(a, r.generators["A2B"])
    identity_gap = (_colour_stats(a) - _colour_stats(b)).norm()
    learned_gap = (_colour_stats(fake_b) - _colour_stats(b)).norm()
    assert learned_gap < 0.5 * identity_gap, (learned_gap, identity_gap)
    # Per pixel too, against the paired truth the generator never saw.
    assert (fake_b - b).abs().mean() < 0.75 * (a - b).abs().mean()
    cycle = r.loss_curve("cycle_A")
    assert cycle[-20:].mean() < 0.8 * cycle[:20].mean(), (cycle[:20].mean(), cycle[-20:].mean())


def _cool(x: torch.Tensor) -> torch.Tensor:
    """A second toy culture: a cold blue cast."""
    gain = torch.tensor([0.5, 0.8, 1.0]).view(1, 3, 1, 1)
    return (x * gain + torch.tensor([0.0, 0.05, 0.2]).view(1, 3, 1, 1)).clamp(0, 1)


@pytest.mark.slow
def test_conditional_generator_follows_the_label(samples_dir, tmp_path):
    """One generator, three domains (photos, sepia, cool): asked for a culture, its
    outputs land near that culture's colour statistics and away from the others'."""
    transforms = {"photo": lambda x: x, "sepia": _tone, "cool": _cool}
    photos = sorted(p for p in (samples_dir / "content").iterdir() if p.suffix in (".jpg", ".png"))
    for name in transforms:
        (tmp_path / name).mkdir()
    for i, f in enumerate(photos):
        x = load_image(f, max_side=72)
        for name, t in transforms.items():
            save_image(t(x), tmp_path / name / f"{i}.png")
    cfg = TrainConfig(model="conditional", size=32, iters=150, batch_size=4, lr=1e-3, ngf=8,
                      ndf=8, n_blocks=6, sample_every=0, checkpoint_every=0, progress_bar=False)
    r = train_gan(cfg, {n: tmp_path / n for n in transforms}, tmp_path / "run")
    assert r.domains == ["photo", "sepia", "cool"]

    a = ImageCollection(tmp_path / "photo", cfg.load_size, min_images=1).center_crops(32)
    for target in ("sepia", "cool"):
        out = cyclegan_transfer(a, r.generators["conditional"], target_culture=target)
        gaps = {n: float((_colour_stats(out) - _colour_stats(t(a))).norm())
                for n, t in transforms.items()}
        others = min(v for n, v in gaps.items() if n != target)
        assert gaps[target] < 0.6 * others, (target, gaps)
    rec = r.loss_curve("rec")
    assert rec[-20:].mean() < 0.8 * rec[:20].mean()
