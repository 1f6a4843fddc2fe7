"""Candidates per second through the generation pipeline: batched vs one per task.

    python bench/pipeline_bench.py                  # WCT at 128 px, 3 contents × 3 styles, CPU
    python bench/pipeline_bench.py --device cuda --size 512 --method adain

Runs :func:`studies.workers.generate.run_generation` in-process on a throw-away SQLite
database and media folder (real sample images and weights): once with the
study's candidates in tasks of ``GENERATION_BATCH_PAIRS`` (one model call per
content × style block), once with one candidate per task, after a warm-up that
loads the models. Prints both rates and the speed-up of batching, measured in
the same run. The pipeline's own cost (claim, heartbeat, PNG encoding,
storage, conditional update) is the part that is not stylisation.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", default="wct")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--contents", type=int, default=3)
    parser.add_argument("--styles", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="pipeline-bench-"))
    os.environ.update(STYLESTUDY_DATA_DIR=str(tmp), MEDIA_ROOT=str(tmp / "media"),
                      DATABASE_URL=f"sqlite:///{tmp / 'bench.sqlite3'}", DJANGO_SETTINGS_MODULE="config.settings")
    import django

    django.setup()
    import torch
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from studies.actions import do_create_study, do_import_images
    from studies.models import Candidate, CultureTag, MethodConfig
    from studies.workers.generate import run_generation

    if args.threads:
        torch.set_num_threads(args.threads)
    os.environ.setdefault("STYLECORE_WEIGHTS_DIR", str(settings.STYLECORE_WEIGHTS_DIR))
    call_command("migrate", verbosity=0)
    samples = settings.STYLESTUDY_SAMPLES_DIR
    owner = get_user_model().objects.create_user("bench")
    culture = CultureTag.objects.create(slug="bench", name="bench")

    def study(slug: str):
        s = do_create_study(title=slug, slug=slug, owner=owner, image_size=args.size)
        do_import_images(s, [(p.name, p.read_bytes()) for p in sorted((samples / "content").glob("*.jpg"))[
            : args.contents]], kind="content")
        styles = sorted((samples / "style" / "western").glob("*.jpg"))[: args.styles]
        do_import_images(s, [(p.name, p.read_bytes()) for p in styles], kind="style", culture=culture)
        MethodConfig.objects.create(study=s, label=args.method, method=args.method)
        cells = [Candidate(study=s, content=c, style=st, method_config=s.method_configs.get(), seed=0)
                 for c in s.content_images.all() for st in s.style_images.all()]
        Candidate.objects.bulk_create(cells)
        return list(s.candidates.values_list("pk", flat=True))

    def rate(ids: list[int], per_task: int) -> float:
        start = time.perf_counter()
        for k in range(0, len(ids), per_task):
            out = run_generation(ids[k : k + per_task], device=args.device)
            assert not out["failed"], Candidate.objects.filter(pk__in=out["failed"]).values_list("error", flat=True)
        return len(ids) / (time.perf_counter() - start)

    rate(study("warmup")[:1], 1)
    batch = args.contents * args.styles
    batched = rate(study("batched"), batch)
    single = rate(study("single"), 1)
    print(f"{args.method} {args.size}px {args.device}: {args.contents}x{args.styles} grid")
    print(f"  batched ({batch} per task):  {batched:.2f} candidates/s")
    print(f"  one per task:               {single:.2f} candidates/s")
    print(f"  speed-up of batching:       {batched / single:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
