"""The demo study built from the sample images by ``manage.py demo``."""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.db import transaction
from PIL import Image

from .models import (
    BackgroundQuestion,
    ContentImage,
    CultureTag,
    ParticipantGroup,
    Question,
    Study,
    StyleImage,
)

DEMO_SLUG = "demo-cross-cultural"

# Sample folder name → culture tag (slug, English name, translations).
CULTURES = {
    "western": ("western-oil", "Western oil painting", {"zh-hans": "西方油画", "ja": "西洋油彩画"}),
    "chinese": ("chinese-ink", "Chinese ink wash", {"zh-hans": "中国水墨画", "ja": "中国水墨画"}),
    "japanese": ("japanese-ukiyoe", "Japanese ukiyo-e", {"zh-hans": "日本浮世绘", "ja": "浮世絵"}),
}


@dataclass
class DemoLogin:
    username: str
    password: str


def ensure_demo_admin(username: str = "admin", password: str = "stylestudy-demo") -> DemoLogin:
    """A superuser for the local demo (never used in production: DEBUG only)."""
    User = get_user_model()
    user, created = User.objects.get_or_create(username=username, defaults={"is_staff": True, "is_superuser": True})
    if created or not user.check_password(password):
        user.set_password(password)
        user.is_staff = user.is_superuser = True
        user.save()
    return DemoLogin(username, password)


def _size(data: bytes) -> dict[str, int]:
    with Image.open(io.BytesIO(data)) as img:
        return {"width": img.width, "height": img.height}


def _attach(img, name: str, data: bytes) -> None:
    size = _size(data)
    img.image.save(name, ContentFile(data), save=False)
    # ImageField's own dimension update reads None here; set them from Pillow.
    img.width, img.height = size["width"], size["height"]
    img.save()


def _sample_files(samples_dir: Path, kind: str) -> list[Path]:
    manifest = samples_dir / "manifest.json"
    listed = []
    if manifest.is_file():
        for entry in json.loads(manifest.read_text()).get("images", []):
            if entry.get("kind") == kind:
                listed.append(samples_dir / entry["file"])
    # The manifest names some files that are not shipped; use what exists.
    return sorted(p for p in listed if p.is_file())


@transaction.atomic
def create_demo_study(samples_dir: Path, owner, *, contents: int = 3, styles_per_culture: int = 2) -> Study:
    """Create (or return) the demo study from the sample images."""
    study = Study.objects.filter(slug=DEMO_SLUG).first()
    if study is not None:
        return study
    study = Study.objects.create(
        title="Demo: style transfer across art cultures",
        slug=DEMO_SLUG,
        description="Sample content photos stylised with Western, Chinese and Japanese artworks.",
        languages=["en", "zh-hans", "ja"],
        texts={
            "en": {
                "consent": "This demo study asks you to rate images. No personal data is collected.",
                "instructions": "You will see images made by computer programs. Answer each question honestly.",
                "thanks": "Thank you for taking part.",
            },
            "zh-hans": {
                "consent": "本演示研究请您对图像进行评分。不收集任何个人数据。",
                "instructions": "您将看到由计算机程序生成的图像。请如实回答每个问题。",
                "thanks": "感谢您的参与。",
            },
            "ja": {
                "consent": "このデモ研究では画像を評価していただきます。個人データは収集しません。",
                "instructions": "コンピュータプログラムが作成した画像が表示されます。各質問に正直にお答えください。",
                "thanks": "ご参加ありがとうございました。",
            },
        },
        image_size=256,
        trials_per_participant=12,
    )
    study.owners.add(owner)
    for path in _sample_files(samples_dir, "content")[:contents]:
        data = path.read_bytes()
        img = ContentImage(study=study, title=path.stem, original_filename=path.name, sha256=hashlib.sha256(data).hexdigest(),
                           **_size(data))
        _attach(img, path.name, data)
    for folder, (slug, name, names) in CULTURES.items():
        tag, _ = CultureTag.objects.get_or_create(slug=slug, defaults={"name": name, "names": names})
        files = [p for p in _sample_files(samples_dir, "style") if p.parent.name == folder and not p.name.startswith("chipgan")]
        for path in files[:styles_per_culture]:
            data = path.read_bytes()
            img = StyleImage(
                study=study, culture=tag, title=path.stem, original_filename=path.name,
                sha256=hashlib.sha256(data).hexdigest(), **_size(data),
            )
            _attach(img, path.name, data)
    Question.objects.create(
        study=study, kind=Question.Kind.LIKERT, dimension=Question.Dimension.STYLE_FIDELITY, order=1,
        texts={"en": "How well does the image capture the style of the artwork?",
               "zh-hans": "这幅图像在多大程度上体现了艺术作品的风格？",
               "ja": "この画像は作品のスタイルをどの程度捉えていますか？"},
        scale_labels={"en": ["Not at all", "Completely"], "zh-hans": ["完全没有", "完全体现"], "ja": ["全くない", "完全に"]},
    )
    BackgroundQuestion.objects.create(
        study=study, key="cultural_background", order=1,
        texts={"en": "Which cultural background do you identify with most?",
               "zh-hans": "您最认同哪种文化背景？", "ja": "最も共感する文化的背景はどれですか？"},
        choices=[
            {"value": "western", "labels": {"en": "Western (Europe, the Americas, Oceania)", "zh-hans": "西方", "ja": "西洋"}},
            {"value": "chinese", "labels": {"en": "Chinese", "zh-hans": "中国", "ja": "中国"}},
            {"value": "japanese", "labels": {"en": "Japanese", "zh-hans": "日本", "ja": "日本"}},
        ],
    )
    for folder, (slug, _name, _names) in CULTURES.items():
        ParticipantGroup.objects.create(
            study=study, slug=folder, name=f"{folder.title()} participants",
            culture=CultureTag.objects.get(slug=slug), eligibility={"cultural_background": [folder]}, quota=20,
        )
    return study
