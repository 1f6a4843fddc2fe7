"""Scoring cost against generation cost on the demo grid, in-process.

    python bench/scoring_bench.py                    # the demo: 3 contents x 6 styles x 3 methods at 256 px, CPU
    python bench/scoring_bench.py --contents 1 --styles-per-culture 1 --size 128

Builds the demo study (``studies.demo``) on a throw-away SQLite database and
media folder with the real sample images and weights, then times, in one run:

* generation: :func:`studies.workers.generate.run_generation` in the tasks
  the lifecycle queues (one method config and seed, up to
  ``GENERATION_BATCH_PAIRS`` candidates each);
* scoring: :func:`studies.workers.score.run_scoring` in tasks of
  ``SCORING_BATCH`` candidates (every per-image metric in one batched call),
  then :func:`run_set_scoring` (FID/KID/ArtFID once per method x culture);
* the baseline: the previous worker's loop (one ``compute`` call per metric and
  batch) on the same candidates, after the networks are warm.

Prints seconds per candidate for each and the ratio scoring / generation.
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
    parser.add_argument("--contents", type=int, default=3)
    parser.add_argument("--styles-per-culture", type=int, default=2)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--no-baseline", action="store_true", help="skip the one-call-per-metric baseline")
    args = parser.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="scoring-bench-"))
    os.environ.update(STYLESTUDY_DATA_DIR=str(tmp), MEDIA_ROOT=str(tmp / "media"),
                      DATABASE_URL=f"sqlite:///{tmp / 'bench.sqlite3'}", DJANGO_SETTINGS_MODULE="config.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from studies.demo import create_demo_study, ensure_demo_methods
    from studies.lifecycle.candidates import GENERATION_BATCH_PAIRS, SCORING_BATCH
    from studies.models import Candidate, MetricValue
    from studies.workers.generate import run_generation
    from studies.workers.score import (
        _Images,
        default_metrics,
        run_scoring,
        run_set_scoring,
    )
    from stylecore.metrics import compute, get_metric

    os.environ.setdefault("STYLECORE_WEIGHTS_DIR", str(settings.STYLECORE_WEIGHTS_DIR))
    call_command("migrate", verbosity=0)
    owner = get_user_model().objects.create_user("bench")
    study = create_demo_study(settings.STYLESTUDY_SAMPLES_DIR, owner, contents=args.contents,
                              styles_per_culture=args.styles_per_culture, image_size=args.size)
    configs = ensure_demo_methods(study)
    Candidate.objects.bulk_create([
        Candidate(study=study, content=c, style=s, method_config=m, seed=0)
        for m in configs for s in study.style_images.order_by("pk") for c in study.content_images.order_by("pk")
    ])
    ids = list(study.candidates.order_by("method_config_id", "style_id", "content_id").values_list("pk", flat=True))
    n = len(ids)
    names = default_metrics()
    image_names = [m for m in names if get_metric(m).kind == "image"]

    start = time.perf_counter()
    for mc in configs:
        group = list(study.candidates.filter(method_config=mc).order_by("style_id", "content_id")
                     .values_list("pk", flat=True))
        for k in range(0, len(group), GENERATION_BATCH_PAIRS):
            out = run_generation(group[k : k + GENERATION_BATCH_PAIRS], device=args.device)
            assert not out["failed"], Candidate.objects.filter(pk__in=out["failed"]).values_list("error", flat=True)
    generation = time.perf_counter() - start

    start = time.perf_counter()
    for k in range(0, n, SCORING_BATCH):
        run_scoring(ids[k : k + SCORING_BATCH], device=args.device)
    per_image = time.perf_counter() - start
    start = time.perf_counter()
    sets = run_set_scoring(ids, device=args.device)
    set_seconds = time.perf_counter() - start

    baseline = None
    if not args.no_baseline:
        # The previous worker: one compute call per metric and batch (networks are warm by now).
        rows = list(Candidate.objects.filter(pk__in=ids).select_related("study", "content", "style").order_by("pk"))
        files = _Images()
        start = time.perf_counter()
        for k in range(0, n, SCORING_BATCH):
            batch = rows[k : k + SCORING_BATCH]
            images = [files.get("candidate", r) for r in batch]
            contents = [files.get("content", r.content) for r in batch]
            styles = [files.get("style", r.style, r.study.image_size) for r in batch]
            for name in image_names:
                try:
                    compute([name], images, contents, styles, device=args.device)
                except (ValueError, RuntimeError):
                    pass
        baseline = time.perf_counter() - start

    values = MetricValue.objects.filter(candidate__study=study)
    print(f"demo grid: {n} candidates ({args.contents} contents x {study.style_images.count()} styles x "
          f"{len(configs)} methods) at {args.size} px on {args.device}; {len(image_names)} per-image metrics, "
          f"{len(names) - len(image_names)} set metrics")
    print(f"  generation:               {generation:7.1f} s  {generation / n:6.2f} s/candidate")
    print(f"  scoring, per-image:       {per_image:7.1f} s  {per_image / n:6.2f} s/candidate "
          f"({values.filter(value__isnull=False).count()} values, "
          f"{values.filter(unavailable_reason__startswith='not applicable').count()} not applicable, "
          f"{values.filter(unavailable_reason__startswith='unavailable').count()} unavailable, "
          f"{values.filter(unavailable_reason__startswith='error').count()} errors)")
    print(f"  scoring, set metrics:     {set_seconds:7.1f} s  ({sets['sets']} sets, {sets['stored']} values)")
    print(f"  scoring / generation:     {(per_image + set_seconds) / generation:7.2f}")
    if baseline is not None:
        print(f"  baseline, one call per metric (warm): {baseline:7.1f} s  {baseline / n:6.2f} s/candidate")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
