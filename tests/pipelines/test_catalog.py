from pipelines import catalog
from pipelines.examples import REALISTIC


def test_catalog_has_7_categories_and_26_events() -> None:
    assert catalog.CATEGORIES == (
        "contact",
        "form",
        "pipeline",
        "appointment",
        "payment",
        "communication",
        "time",
    )
    assert len(catalog.TRIGGER_EVENTS) == 26
    assert len(catalog.BY_NAME) == 26
    assert len(catalog.BY_EVENT_TYPE) == 26


def test_identifying_fields_are_event_fields() -> None:
    for event in catalog.TRIGGER_EVENTS:
        assert set(event.identifying) <= set(event.fields), event.name


def test_spec_rows() -> None:
    stage = catalog.BY_NAME["stage_changed"]
    assert stage.event_type == "deal.stage_changed"
    assert stage.identifying == ("pipeline_id", "stage_id")
    assert catalog.BY_EVENT_TYPE["payment.received"].identifying == ("product_id",)
    assert catalog.BY_NAME["sms_received"].identifying == ()
    assert catalog.CONTACT_DELETED not in catalog.BY_EVENT_TYPE


def test_examples_cover_the_catalog() -> None:
    assert set(REALISTIC) == set(catalog.BY_NAME)
