"""Directory (SCIM) webhook events: verified first, then one typed Litestar event per type."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from rpkit.store import MemoryStore
from rpkit_scalekit import (
    DIRECTORY_EVENTS,
    DirectoryGroupEvent,
    DirectoryUserDeleted,
    DirectoryUserEvent,
    WebhookVerificationError,
    WebhookVerifier,
)
from rpkit_scalekit.directory_events import DirectoryToggled, directory_event
from rpkit_scalekit.testing import (
    FakeDirectory,
    FakeDirectoryGroup,
    FakeDirectoryUser,
    FakeScalekit,
    WebhookEndpoint,
    new_webhook_secret,
)
from rpkit_scalekit.webhooks import typed_event

from .conftest import BASE, SK, Browser

pytestmark = pytest.mark.scalekit_b2b

ORG = "org_300000000000000001"
URL = f"{BASE}{SK}/webhooks"
SECRET = new_webhook_secret()
KINDS: list[tuple[str, type[Any]]] = [
    ("user_created", DirectoryUserEvent),
    ("user_updated", DirectoryUserEvent),
    ("user_deleted", DirectoryUserDeleted),
    ("group_created", DirectoryGroupEvent),
    ("group_updated", DirectoryGroupEvent),
    ("group_deleted", DirectoryGroupEvent),
]


@pytest.fixture
def directory(fake_scalekit: FakeScalekit) -> FakeDirectory:
    fake_scalekit.webhook_endpoints.append(WebhookEndpoint(URL, SECRET))
    found = fake_scalekit.add_directory(FakeDirectory("dir_400000000000000001", ORG))
    found.add_group(FakeDirectoryGroup("dirgroup_500000000000000001", "Engineering"))
    found.add_user(
        FakeDirectoryUser(
            "diruser_600000000000000001",
            "ada@acme.test",
            given_name="Ada",
            family_name="Lovelace",
            dp_id="00u1",
            group_ids=("dirgroup_500000000000000001",),
            roles=("billing_admin",),
        )
    )
    return found


@pytest.fixture
async def app(open_browser: Callable[..., Awaitable[Browser]]) -> Browser:
    return await open_browser(webhook_secret=SECRET)


def subject_of(directory: FakeDirectory, kind: str) -> Any:
    return directory.users[0] if kind.startswith("user_") else directory.groups[0]


@pytest.mark.parametrize(("kind", "payload_type"), KINDS)
async def test_each_directory_event_is_emitted_typed_under_its_own_name(
    app: Browser, directory: FakeDirectory, kind: str, payload_type: type[Any]
) -> None:
    app.fake.send_directory_event(kind, directory, subject_of(directory, kind))  # type: ignore[arg-type]
    [delivery] = await app.fake.deliver(app.client)

    assert delivery.status == 200
    name = f"rpkit.scalekit.directory.{kind}"
    assert DIRECTORY_EVENTS[f"organization.directory.{kind}"] == name
    [heard] = await app.heard.wait_for(name)
    payload: Any = heard["payload"]
    assert type(payload) is payload_type
    assert payload.id == subject_of(directory, kind).id
    assert payload.organization_id == ORG
    assert heard["event"].type == f"organization.directory.{kind}"
    assert len(await app.heard.wait_for("rpkit.scalekit.webhook")) == 1, "the generic one too"
    others = [n for n in DIRECTORY_EVENTS.values() if n != name and app.heard.events.get(n)]
    assert others == []


@pytest.mark.parametrize("enabled", [True, False])
async def test_directory_switched_on_or_off_is_emitted_typed(
    app: Browser, directory: FakeDirectory, enabled: bool
) -> None:
    app.fake.set_directory_enabled(directory, enabled)
    [delivery] = await app.fake.deliver(app.client)

    state = "enabled" if enabled else "disabled"
    assert delivery.status == 200
    name = f"rpkit.scalekit.directory.{state}"
    assert DIRECTORY_EVENTS[f"organization.directory_{state}"] == name
    [heard] = await app.heard.wait_for(name)
    toggled = heard["payload"]
    assert type(toggled) is DirectoryToggled
    assert (toggled.id, toggled.organization_id, toggled.provider, toggled.directory_type) == (
        directory.id,
        ORG,
        "OKTA",
        "SCIM",
    )
    assert toggled.enabled is enabled
    assert heard["event"].type == f"organization.directory_{state}"
    others = [n for n in DIRECTORY_EVENTS.values() if n != name]
    assert not any(app.heard.events.get(n) for n in others)


def test_the_documented_directory_enabled_example_is_typed_as_sent() -> None:
    """Scalekit's reference example of ``directory_enabled``, ``"enabled": false`` included:
    the event type says what happened, the member is kept as sent."""
    data = {
        "directory_type": "SCIM",
        "enabled": False,
        "id": "dir_55135622825771522",
        "organization_id": "org_55135410258444802",
        "provider": "OKTA",
        "updated_at": "2025-01-15T08:55:22.792993454Z",
        "last_sync_at": None,
    }

    typed = directory_event("organization.directory_enabled", data)

    assert typed is not None
    assert typed.name == "rpkit.scalekit.directory.enabled"
    assert typed.payload == DirectoryToggled(
        id="dir_55135622825771522",
        organization_id="org_55135410258444802",
        directory_type="SCIM",
        provider="OKTA",
        enabled=False,
        updated_at="2025-01-15T08:55:22.792993454Z",
    )


@pytest.mark.parametrize("data", [{}, {"id": "dir_1", "enabled": "yes"}, {"id": ["dir_1"]}])
def test_a_directory_toggle_of_the_wrong_shape_is_a_payload_refusal(data: dict[str, Any]) -> None:
    with pytest.raises(WebhookVerificationError) as refused:
        directory_event("organization.directory_disabled", data)
    assert refused.value.reason == "payload"


async def test_user_created_payload_has_the_documented_fields(
    app: Browser, directory: FakeDirectory
) -> None:
    app.fake.send_directory_event("user_created", directory, directory.users[0])
    await app.fake.deliver(app.client)

    [heard] = await app.heard.wait_for("rpkit.scalekit.directory.user_created")
    user = heard["payload"]
    assert (user.email, user.dp_id, user.active, user.name) == (
        "ada@acme.test",
        "00u1",
        True,
        "Ada Lovelace",
    )
    assert [g.name for g in user.groups] == ["Engineering"]
    assert [r.role_name for r in user.roles] == ["billing_admin"]


async def test_an_unknown_directory_event_keeps_the_generic_event_only(
    app: Browser, directory: FakeDirectory
) -> None:
    app.fake.emit("organization.directory.user_suspended", {"id": "diruser_1"}, organization_id=ORG)
    [delivery] = await app.fake.deliver(app.client)

    assert delivery.status == 200
    [generic] = await app.heard.wait_for("rpkit.scalekit.webhook")
    assert generic["event"].type == "organization.directory.user_suspended"
    assert not any(app.heard.events.get(n) for n in DIRECTORY_EVENTS.values())


async def test_a_badly_signed_directory_event_emits_nothing(
    app: Browser, directory: FakeDirectory
) -> None:
    app.fake.send_directory_event("user_deleted", directory, directory.users[0], wrong_secret=True)
    [delivery] = await app.fake.deliver(app.client)

    assert delivery.status == 400
    await app.heard.wait_for("rpkit.scalekit.directory.user_deleted")
    assert app.heard.events == {}


async def test_a_directory_event_of_the_wrong_shape_is_refused_and_emits_nothing(
    app: Browser, directory: FakeDirectory
) -> None:
    app.fake.emit("organization.directory.user_deleted", {"email": "x@acme.test"})  # no id
    app.fake.emit("organization.directory.group_created", {"id": 5})
    deliveries = await app.fake.deliver(app.client)

    assert [d.status for d in deliveries] == [400, 400]
    await app.heard.wait_for("rpkit.scalekit.webhook")
    assert app.heard.events == {}


async def test_a_refused_directory_event_frees_its_delivery_id_for_the_retry(
    fake_scalekit: FakeScalekit,
) -> None:
    """The verifier's replay entry is released when the typed payload is refused, as for any
    handling failure, so Scalekit's retry is not mistaken for a replay."""
    verifier = WebhookVerifier(SECRET, store=MemoryStore())
    [message] = fake_scalekit.emit(
        "organization.directory.group_updated", {"display_name": "no id"}, url=URL, secret=SECRET
    )
    event = await verifier.verify(message.headers, message.body)

    with pytest.raises(WebhookVerificationError) as refused:
        typed_event(event)
    assert refused.value.reason == "payload"
    await verifier.release(event)
    assert (await verifier.verify(message.headers, message.body)).id == event.id


def test_the_fake_refuses_a_user_event_about_a_group(directory: FakeDirectory) -> None:
    fake = FakeScalekit()
    with pytest.raises(TypeError):
        fake.send_directory_event("user_created", directory, directory.groups[0])


def test_null_lists_and_maps_mean_absent_as_go_sends_them() -> None:
    data = {"id": "diruser_1", "roles": None, "groups": None, "raw_attributes": None, "name": None}

    typed = directory_event("organization.directory.user_updated", data)

    assert typed is not None
    user = typed.payload
    assert isinstance(user, DirectoryUserEvent)
    assert (user.roles, user.groups, user.name) == ((), (), None)


@pytest.mark.parametrize(
    "data",
    [{}, {"id": 7}, {"id": "diruser_1", "active": "yes"}, {"id": "diruser_1", "groups": [{}]}],
)
def test_a_user_event_of_the_wrong_shape_is_a_payload_refusal(data: dict[str, Any]) -> None:
    with pytest.raises(WebhookVerificationError) as refused:
        directory_event("organization.directory.user_created", data)
    assert refused.value.reason == "payload"
