"""The demo study built from the sample images by ``manage.py demo``."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction

from .actions import do_go_live, do_import_images, do_queue_generation
from .actions.participants import do_add_default_background_questions
from .models import (
    Candidate,
    CultureTag,
    MethodConfig,
    ParticipantGroup,
    Question,
    Study,
)
from .workers.catalogue import method_specs

logger = logging.getLogger(__name__)

DEMO_SLUG = "demo-cross-cultural"

# Method configurations of the demo: (label, method, parameters); only those
# whose method is installed are created. Colour transfer needs no weights;
# WCT and AdaIN run on the VGG19 encoder/decoder files.
DEMO_METHODS = [
    ("Colour transfer", "color", {}),
    ("WCT", "wct", {}),
    ("AdaIN", "adain", {}),
]

# Participants per group. Each participant rates one candidate per content photo in the Likert question (3 of
# the 3 contents × 6 styles × 3 methods = 54 candidates), so a full group gives each candidate 30 × 3 / 54 = 1.7
# ratings, above the report's minimum for inference (1.5; 20 would give 1.1 and leave the question described only).
DEMO_QUOTA = 30

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
def create_demo_study(
    samples_dir: Path, owner, *, contents: int = 3, styles_per_culture: int = 2, image_size: int = 256
) -> Study:
    """Create (or return) the demo study from the sample images (imported like uploads)."""
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
                "consent": (
                    "This demo study asks you to rate, compare and rank images made by computer programs. "
                    "First you answer a few questions about your background: the cultural background you "
                    "identify with, the country you grew up in, the languages you speak fluently, the years "
                    "you have lived abroad, your training in visual art and your age band. These answers are "
                    "stored with your ratings and response times. You are not asked for your name or contact "
                    "details. If you came from a recruitment site, your participant id there is stored only "
                    "in pseudonymised form (a keyed hash), with the site's study and session references. You "
                    "may withdraw at any time with the link at the foot of each page: everything you answered "
                    "is then deleted."
                ),
                "instructions": "You will see images made by computer programs. Answer each question honestly.",
                "thanks": "Thank you for taking part.",
            },
            "zh-hans": {
                "title": "演示：跨艺术文化的风格迁移",
                "consent": (
                    "本演示研究请您对计算机程序生成的图像进行评分、比较和排序。开始前，您需要回答几个关于您背景的"
                    "问题：您最认同的文化背景、成长的国家、能流利使用的语言、在国外生活的年数、视觉艺术训练程度"
                    "以及年龄段。这些回答会与您的评分和反应时间一起保存。我们不会询问您的姓名或联系方式。如果您"
                    "来自招募网站，您在该网站的参与者编号仅以假名化形式（带密钥的哈希值）保存，同时保存该网站的"
                    "研究编号和会话编号。您可以随时通过每页底部的链接退出研究，届时您的所有回答都会被删除。"
                ),
                "instructions": "您将看到由计算机程序生成的图像。请如实回答每个问题。",
                "thanks": "感谢您的参与。",
            },
            "ja": {
                "title": "デモ：芸術文化を越えたスタイル変換",
                "consent": (
                    "このデモ研究では、コンピュータプログラムが作成した画像を評価・比較・順位付けしていただきます。"
                    "最初に、あなたの背景についていくつかの質問にお答えいただきます：最も共感する文化的背景、育った"
                    "国、流暢に話せる言語、海外で暮らした年数、視覚芸術の訓練の程度、年齢層です。これらの回答は、"
                    "あなたの評価や回答時間とともに保存されます。お名前や連絡先はお尋ねしません。募集サイトから参加"
                    "された場合、そのサイトでの参加者IDは仮名化された形（鍵付きハッシュ）でのみ保存され、サイトの"
                    "研究IDとセッションIDも保存されます。各ページ下部のリンクからいつでも参加を取りやめることができ、"
                    "その場合は回答がすべて削除されます。"
                ),
                "instructions": "コンピュータプログラムが作成した画像が表示されます。各質問に正直にお答えください。",
                "thanks": "ご参加ありがとうございました。",
            },
        },
        image_size=image_size,
        trials_per_participant=12,
    )
    study.owners.add(owner)
    content_files = [(p.name, p.read_bytes()) for p in _sample_files(samples_dir, "content")[:contents]]
    report = do_import_images(study, content_files, kind="content")
    for folder, (slug, name, names) in CULTURES.items():
        tag, _ = CultureTag.objects.get_or_create(slug=slug, defaults={"name": name, "names": names})
        files = [p for p in _sample_files(samples_dir, "style") if p.parent.name == folder and not p.name.startswith("chipgan")]
        chosen = [(p.name, p.read_bytes()) for p in files[:styles_per_culture]]
        report.rejected += do_import_images(study, chosen, kind="style", culture=tag).rejected
    if report.rejected:
        logger.warning("demo: sample files rejected: %s", report.rejected)
    Question.objects.create(
        study=study, kind=Question.Kind.LIKERT, dimension=Question.Dimension.STYLE_FIDELITY, order=1,
        texts={"en": "How well does the image capture the style of the artwork?",
               "zh-hans": "这幅图像在多大程度上体现了艺术作品的风格？",
               "ja": "この画像は作品のスタイルをどの程度捉えていますか？"},
        scale_labels={"en": ["Not at all", "Completely"], "zh-hans": ["完全没有", "完全体现"], "ja": ["全くない", "完全に"]},
    )
    Question.objects.create(
        study=study, kind=Question.Kind.TWO_AFC, dimension=Question.Dimension.CULTURAL_AUTHENTICITY, order=2,
        texts={"en": "Which image looks more like an authentic work of the artwork's tradition?",
               "zh-hans": "哪幅图像更像该艺术传统的真实作品？",
               "ja": "どちらの画像がその芸術の伝統の本物の作品らしく見えますか？"},
    )
    Question.objects.create(
        study=study, kind=Question.Kind.RANKING, dimension=Question.Dimension.AESTHETIC_APPEAL, order=3,
        n_candidates=3,
        texts={"en": "Order the images from most to least appealing.",
               "zh-hans": "请按吸引力从高到低排列这些图像。",
               "ja": "画像を魅力的な順に並べてください。"},
    )
    do_add_default_background_questions(study)
    for folder, (slug, _name, _names) in CULTURES.items():
        ParticipantGroup.objects.create(
            study=study, slug=folder, name=f"{folder.title()} participants",
            culture=CultureTag.objects.get(slug=slug), eligibility={"cultural_background": [folder]},
            quota=DEMO_QUOTA,
        )
    return study


def ensure_demo_methods(study: Study) -> list[MethodConfig]:
    """The demo's method configurations (those whose method is installed)."""
    specs = method_specs()
    configs = []
    for label, method, params in DEMO_METHODS:
        if method in specs:
            config, _ = MethodConfig.objects.get_or_create(
                study=study, label=label, defaults={"method": method, "params": specs[method].validate(params)}
            )
            configs.append(config)
    return configs


def run_demo_pipeline(study: Study, *, timeout: float = 900, poll: float = 2.0, report=print) -> Study:
    """Queue generation and scoring, wait for the candidates, then make the study live.

    A worker must be running. Returns the study (live when every candidate is
    generated and at least one is done).
    """
    study.refresh_from_db()
    if study.status == Study.Status.LIVE:
        return study
    if not ensure_demo_methods(study):
        report("  no style-transfer methods installed: the study stays a draft")
        return study
    queued = do_queue_generation(study, score=True)
    report(f"  generating:  {queued['queued']} candidate(s) in {queued['tasks']} task(s)")
    started = time.monotonic()
    pending_states = [Candidate.Status.QUEUED, Candidate.Status.RUNNING]
    last = None
    while study.candidates.filter(status__in=pending_states).exists():
        if time.monotonic() - started > timeout:
            report(f"  generation still running after {timeout:.0f} s; the study stays {study.status}")
            return study
        done = study.candidates.filter(status=Candidate.Status.DONE).count()
        if done != last:
            report(f"  generated:   {done}/{study.candidates.count()}")
            last = done
        time.sleep(poll)
    failed = study.candidates.filter(status=Candidate.Status.FAILED).count()
    if failed:
        report(f"  {failed} candidate(s) failed; see the study's progress page")
    try:
        # The demo goes live once generated; its checklist warnings (scoring
        # still running, few contents) are accepted on the user's behalf.
        study = do_go_live(study, confirm_warnings=True)
    except ValidationError as exc:
        report(f"  not live: {' '.join(exc.messages)}")
        return study
    report(f"  live:        configuration hash {study.config_hash[:12]}")
    return study
