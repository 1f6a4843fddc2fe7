"""Test data: a live study with tiny generated images, three question kinds and three groups."""

from __future__ import annotations

import hashlib
import io
import random

from django.core.files.base import ContentFile
from django.utils import timezone
from PIL import Image

from studies.actions.participants import do_add_default_background_questions
from studies.models import (
    Candidate,
    ContentImage,
    CultureTag,
    MethodConfig,
    ParticipantGroup,
    Question,
    Study,
    StyleImage,
)

CULTURES = {"western": "western-oil", "chinese": "chinese-ink", "japanese": "japanese-ukiyoe"}


def png_bytes(seed: int, size: int = 32) -> bytes:
    """A small PNG: a solid colour with a little noise, distinct per seed."""
    rng = random.Random(seed)
    base = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
    img = Image.new("RGB", (size, size), base)
    px = img.load()
    for _ in range(size * 4):
        x, y = rng.randrange(size), rng.randrange(size)
        px[x, y] = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _image(model, study, seed, **extra):
    data = png_bytes(seed)
    obj = model(study=study, sha256=hashlib.sha256(data).hexdigest(), width=32, height=32, title=f"img{seed}", **extra)
    obj.image.save(f"{seed}.png", ContentFile(data), save=False)
    # The field's own dimension update reads None here; set them explicitly.
    obj.width = obj.height = 32
    obj.save()
    return obj


def make_study(
    *,
    slug: str = "study",
    contents: int = 4,
    styles: int = 1,
    methods: int = 3,
    questions: tuple[str, ...] = ("likert", "2afc", "ranking"),
    trials: int = 6,
    quota: int = 30,
    attention_allowed: int = 0,
    status: str = Study.Status.LIVE,
    completion_url: str = "https://recruiter.example/complete?cc={code}",
    screenout_url: str = "https://recruiter.example/screenout",
    languages: tuple[str, ...] | list[str] = ("en", "zh-hans", "ja"),
) -> Study:
    """A live study with ``contents × styles × methods`` finished candidates."""
    # Built as a draft, then opened at the end: rows of a live study's design cannot be added.
    study = Study.objects.create(
        title="Test study", slug=slug, languages=list(languages), default_language=languages[0],
        status=Study.Status.DRAFT,
        trials_per_participant=trials, max_attention_failures=attention_allowed,
        completion_url=completion_url, screenout_url=screenout_url, live_at=timezone.now(),
        texts={
            "en": {"consent": "Consent text EN.", "instructions": "Instructions EN.", "thanks": "Thanks EN."},
            "zh-hans": {"consent": "知情同意 ZH。", "instructions": "说明 ZH。", "thanks": "谢谢 ZH。"},
            "ja": {"consent": "同意 JA。", "instructions": "説明 JA。", "thanks": "ありがとう JA。"},
        },
    )
    tag, _ = CultureTag.objects.get_or_create(slug="western-oil", defaults={"name": "Western oil"})
    content_objs = [_image(ContentImage, study, 1000 + i) for i in range(contents)]
    style_objs = [_image(StyleImage, study, 2000 + i, culture=tag) for i in range(styles)]
    method_objs = [MethodConfig.objects.create(study=study, label=f"m{i}", method="wct") for i in range(methods)]
    seed = 3000
    for c in content_objs:
        for s in style_objs:
            for m in method_objs:
                cand = Candidate.objects.create(study=study, content=c, style=s, method_config=m,
                                                status=Candidate.Status.DONE)
                cand.image.save(f"{seed}.png", ContentFile(png_bytes(seed)), save=True)
                seed += 1
    texts = {
        "likert": {"en": "How well does the image capture the artwork's style?", "zh-hans": "风格体现得如何？",
                   "ja": "スタイルをどの程度捉えていますか？"},
        "2afc": {"en": "Which image better preserves the photo's content?", "zh-hans": "哪幅图像更好地保留了内容？",
                 "ja": "どちらの画像が内容をよく保っていますか？"},
        "ranking": {"en": "Order the images from most to least appealing.", "zh-hans": "请按吸引力排序。",
                    "ja": "魅力的な順に並べてください。"},
    }
    for order, kind in enumerate(questions):
        Question.objects.create(
            study=study, kind=kind, dimension=Question.Dimension.OVERALL, order=order, texts=texts[kind],
            scale_points=5, scale_labels={"en": ["Poorly", "Perfectly"], "zh-hans": ["很差", "完美"],
                                          "ja": ["全く", "完全に"]},
            n_candidates=3, show_style=True, show_content=(kind == "2afc"),
        )
    do_add_default_background_questions(study)
    for folder, culture in CULTURES.items():
        tag, _ = CultureTag.objects.get_or_create(slug=culture, defaults={"name": culture})
        ParticipantGroup.objects.create(study=study, slug=folder, name=folder, culture=tag,
                                        eligibility={"cultural_background": [folder]}, quota=quota)
    Study.objects.filter(pk=study.pk).update(status=status)
    study.status = status
    return study


BACKGROUND_POST = {
    "cultural_background": "chinese",
    "country_grew_up": "China",
    "languages": ["zh", "en"],
    "years_abroad": "2",
    "art_training": "some",
    "age_band": "25-34",
}
