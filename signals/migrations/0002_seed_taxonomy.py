from django.db import migrations

BASE = ["agreement", "human_review"]
APPEALS = ["agreement", "human_review", "user_appeals"]
INHOPE = "https://www.inhope.org/EN/articles/universal-classification-schema"

TAXONOMY = [
    ("csea.csam", "Child sexual abuse material", "Known or suspected imagery or video of child sexual abuse.", [INHOPE], BASE, None),
    ("csea.grooming", "Grooming", "Building trust with a child in order to sexually abuse or exploit them, including moving conversations to private channels.", [], BASE, 730),
    ("csea.sextortion", "Sextortion of a minor", "Coercing a child with threats to share sexual imagery, usually for more imagery or money.", [], BASE, 730),
    ("csea.ai_generated", "AI-generated CSAM", "Synthetic or manipulated sexual imagery depicting children.", [INHOPE], BASE, None),
    ("csea.trafficking", "Child sex trafficking", "Recruiting, advertising or selling children for sexual exploitation.", [], BASE, 730),
    ("tfgbv.ncii", "Non-consensual intimate imagery", "Intimate images shared without the consent of the person depicted.", ["https://stopncii.org/"], APPEALS, None),
    ("tfgbv.synthetic_sexual_imagery", "Synthetic sexual imagery of adults", "Sexual deepfakes or manipulated intimate imagery of real adults.", [], APPEALS, None),
    ("tfgbv.sextortion", "Sextortion of an adult", "Threatening to share intimate imagery of an adult to coerce money or more imagery.", [], APPEALS, 730),
    ("tfgbv.cyberstalking", "Cyberstalking", "Repeated surveillance, tracking or contact that causes fear.", [], APPEALS, 365),
    ("tfgbv.doxxing", "Doxxing", "Publishing private information about a person to expose them to harm.", [], APPEALS, 365),
    ("tfgbv.coordinated_harassment", "Coordinated harassment", "Groups of accounts acting together to harass a person.", [], APPEALS, 365),
    ("exploitation.commercial_sexual", "Commercial sexual exploitation", "Advertising or profiting from the sexual exploitation of others.", [], BASE, 730),
    ("financial.sextortion_payment", "Sextortion payment", "Payment instruments and accounts receiving sextortion proceeds.", [], ["agreement"], 365),
]


def seed(apps, schema_editor):
    Category = apps.get_model("signals", "Category")
    for code, name, description, references, attestations, ttl in TAXONOMY:
        Category.objects.update_or_create(
            code=code,
            defaults={"name": name, "description": description, "references": references, "required_attestations": attestations, "default_ttl_days": ttl},
        )


class Migration(migrations.Migration):
    dependencies = [("signals", "0001_initial")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
