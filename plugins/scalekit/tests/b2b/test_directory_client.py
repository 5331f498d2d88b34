"""The Directory API client against the fake Scalekit: calls, pagination and typed errors."""

from __future__ import annotations

import httpx
import pytest

from rpkit.testing import Canned
from rpkit_scalekit import (
    DirectoryClient,
    DirectoryResponseError,
    ManagementClient,
    ScalekitAPIError,
    ScalekitAuthError,
    ScalekitInputError,
    ScalekitNotFoundError,
    ScalekitRateLimitedError,
)
from rpkit_scalekit.testing import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    FakeDirectory,
    FakeDirectoryGroup,
    FakeDirectoryUser,
    FakeScalekit,
)

pytestmark = pytest.mark.scalekit_b2b

ORG = "org_300000000000000001"
DIRECTORY = "dir_400000000000000001"
GROUP = "dirgroup_500000000000000001"


@pytest.fixture
def provisioned(fake_scalekit: FakeScalekit) -> FakeDirectory:
    """Acme's Okta directory: 25 users (the first three in Engineering) and two groups."""
    directory = fake_scalekit.add_directory(FakeDirectory(DIRECTORY, ORG, name="Acme Okta"))
    directory.add_group(FakeDirectoryGroup(GROUP, "Engineering"))
    directory.add_group(FakeDirectoryGroup("dirgroup_500000000000000002", "Sales"))
    for n in range(25):
        groups = (GROUP,) if n < 3 else ()
        directory.add_user(
            FakeDirectoryUser(f"diruser_{n:018d}", f"u{n}@acme.test", group_ids=groups)
        )
    return directory


@pytest.fixture
def client(fake_scalekit: FakeScalekit, fake_scalekit_http: httpx.AsyncClient) -> DirectoryClient:
    api = ManagementClient(
        fake_scalekit_http,
        env_url=fake_scalekit.issuer,
        client_id=DEFAULT_CLIENT_ID,
        client_secret=DEFAULT_CLIENT_SECRET,
    )
    return DirectoryClient(api)


async def test_primary_directory_and_get_directory(
    client: DirectoryClient, provisioned: FakeDirectory
) -> None:
    primary = await client.get_primary_directory(ORG)
    same = await client.get_directory(ORG, DIRECTORY)

    assert primary == same
    assert primary.id == DIRECTORY
    assert primary.directory_provider == "OKTA"
    assert primary.total_users == 25, "an int64 sent as a string is read as an int"


async def test_users_are_listed_page_by_page(
    client: DirectoryClient, provisioned: FakeDirectory, fake_scalekit: FakeScalekit
) -> None:
    emails = [user.email async for user in client.users(ORG, DIRECTORY, page_size=10)]

    assert emails == [f"u{n}@acme.test" for n in range(25)]
    pages = [c for c in fake_scalekit.recording if c.endpoint == "directory_members"]
    assert len(pages) == 3
    assert pages[0].param("page_token") is None
    assert all(c.param("page_size") == "10" for c in pages)


async def test_one_page_carries_its_tokens_and_total(
    client: DirectoryClient, provisioned: FakeDirectory
) -> None:
    first = await client.list_users_page(ORG, DIRECTORY, page_size=20)
    second = await client.list_users_page(
        ORG, DIRECTORY, page_size=20, page_token=first.next_page_token
    )

    assert (len(first.items), len(second.items)) == (20, 5)
    assert first.total_size == 25
    assert first.next_page_token is not None
    assert second.next_page_token is None
    assert first.items[0].groups[0].display_name == "Engineering"


async def test_groups_and_users_of_a_group(
    client: DirectoryClient, provisioned: FakeDirectory
) -> None:
    groups = [group async for group in client.groups(ORG, DIRECTORY)]
    engineers = await client.list_users_page(ORG, DIRECTORY, group_id=GROUP)

    assert [(g.display_name, g.total_users) for g in groups] == [("Engineering", 3), ("Sales", 0)]
    assert len(engineers.items) == 3


async def test_an_organization_without_directory_has_no_primary(
    client: DirectoryClient, provisioned: FakeDirectory
) -> None:
    assert await client.list_directories("org_300000000000000002") == ()
    with pytest.raises(ScalekitNotFoundError):
        await client.get_primary_directory("org_300000000000000002")


async def test_an_unknown_directory_is_not_found(
    client: DirectoryClient, provisioned: FakeDirectory
) -> None:
    with pytest.raises(ScalekitNotFoundError) as refused:
        await client.get_directory(ORG, "dir_999")
    assert refused.value.status == 404


@pytest.mark.parametrize(
    ("organization_id", "directory_id"),
    [
        ("org_1/../../users", DIRECTORY),
        ("acme", DIRECTORY),
        (ORG, "dir_1?page_size=1000"),
        (ORG, "dir_"),
        (ORG, "conn_1"),
    ],
)
async def test_malformed_ids_are_refused_before_any_request(
    client: DirectoryClient, fake_scalekit: FakeScalekit, organization_id: str, directory_id: str
) -> None:
    with pytest.raises(ScalekitInputError):
        await client.list_users_page(organization_id, directory_id)
    assert len(fake_scalekit.recording) == 0


@pytest.mark.parametrize("page_size", [0, 101, -1])
async def test_page_size_out_of_bounds_is_refused_locally(
    client: DirectoryClient, fake_scalekit: FakeScalekit, page_size: int
) -> None:
    with pytest.raises(ScalekitInputError):
        await client.list_groups_page(ORG, DIRECTORY, page_size=page_size)
    assert len(fake_scalekit.recording) == 0


async def test_a_token_refused_twice_is_an_auth_error(
    client: DirectoryClient, provisioned: FakeDirectory, fake_scalekit: FakeScalekit
) -> None:
    fake_scalekit.fail_next("directory", 401, times=2, error="UNAUTHENTICATED")

    with pytest.raises(ScalekitAuthError):
        await client.get_directory(ORG, DIRECTORY)
    assert fake_scalekit.recording.count("directory") == 2


async def test_rate_limited_carries_retry_after_and_is_not_retried(
    client: DirectoryClient, provisioned: FakeDirectory, fake_scalekit: FakeScalekit
) -> None:
    fake_scalekit.fail_next("directory_members", 429, headers={"Retry-After": "7"})

    with pytest.raises(ScalekitRateLimitedError) as limited:
        await client.list_users_page(ORG, DIRECTORY)
    assert limited.value.retry_after == 7
    assert fake_scalekit.recording.count("directory_members") == 1


@pytest.mark.parametrize(
    "body",
    [
        {"directories": [{"name": "no id"}]},
        {"directories": {"id": "dir_1"}},
        {"directories": [{"id": "dir_1", "enabled": "maybe"}]},
    ],
)
async def test_a_malformed_answer_is_a_typed_error(
    client: DirectoryClient, fake_scalekit: FakeScalekit, body: object
) -> None:
    fake_scalekit.knobs.respond["directories"] = Canned.json(body)

    with pytest.raises(DirectoryResponseError) as refused:
        await client.list_directories(ORG)
    assert refused.value.code == "scalekit_malformed_response"


async def test_null_members_mean_absent(
    client: DirectoryClient, fake_scalekit: FakeScalekit
) -> None:
    page = {"users": [{"id": "diruser_1", "groups": None, "emails": None}], "next_page_token": None}
    fake_scalekit.knobs.respond["directory_members"] = Canned.json(page)

    answer = await client.list_users_page(ORG, DIRECTORY)

    assert [(u.id, u.groups, u.emails) for u in answer.items] == [("diruser_1", (), ())]
    assert answer.next_page_token is None


async def test_a_listing_that_repeats_its_page_token_is_refused(
    client: DirectoryClient, fake_scalekit: FakeScalekit
) -> None:
    page = {"users": [{"id": "diruser_1"}], "next_page_token": "again"}
    fake_scalekit.knobs.respond["directory_members"] = Canned.json(page)

    seen: list[str] = []

    async def read_all() -> None:
        async for user in client.users(ORG, DIRECTORY):
            seen.append(user.id)

    with pytest.raises(DirectoryResponseError):
        await read_all()
    assert len(seen) == 2, "the second page is read, the third never asked for"
    assert fake_scalekit.recording.count("directory_members") == 2


async def test_the_fake_refuses_a_forged_page_token(
    client: DirectoryClient, provisioned: FakeDirectory
) -> None:
    with pytest.raises(ScalekitAPIError) as refused:
        await client.list_users_page(ORG, DIRECTORY, page_token="not-a-token")
    assert refused.value.status == 400
    assert refused.value.error_code == "INVALID_ARGUMENT"
