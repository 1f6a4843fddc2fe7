"""The researchers group and its admin permissions (README: researchers are staff users in it)."""

from django.db import migrations

# Kept in step with studies.permissions (_RESEARCHER_EDITS, _RESEARCHER_VIEWS).
EDITS = (
    "study", "contentimage", "styleimage", "methodconfig", "question", "participantgroup",
    "backgroundquestion", "gantrainingrun",
)
VIEWS = ("candidate", "metricvalue", "participant", "trial", "trialitem", "response", "studyreport",
         "culturetag", "erasurerecord", "liveedit")


def create_group(apps, schema_editor):
    from django.contrib.auth.management import create_permissions

    # Permissions are normally created after migrate; make sure they exist now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.get_or_create(name="researchers")
    codenames = [f"{a}_{m}" for m in EDITS for a in ("add", "change", "delete", "view")]
    codenames += [f"view_{m}" for m in VIEWS] + ["change_candidate", "delete_studyreport"]
    group.permissions.add(*Permission.objects.filter(content_type__app_label="studies", codename__in=codenames))


class Migration(migrations.Migration):
    dependencies = [
        ("studies", "0004_authoring"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_group, migrations.RunPython.noop)]
