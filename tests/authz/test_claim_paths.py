"""Claim paths: parsed and checked at configuration time, read strictly at request time."""

from __future__ import annotations

from types import MappingProxyType

import pytest

from rpkit.access_token import AccessTokenPolicy
from rpkit.authz import (
    AccessTokenClaims,
    ClaimPath,
    ClaimPaths,
    kept_claims,
    read_names,
    read_organization,
)
from rpkit.errors import ConfigurationError
from rpkit.providers.github import github

pytestmark = pytest.mark.authz

KEYCLOAK = ClaimPaths(roles=("realm_access.roles", "resource_access.{client_id}.roles"))


def test_a_dotted_path_is_split_into_keys():
    assert ClaimPath.parse("realm_access.roles").segments == ("realm_access", "roles")
    assert ClaimPaths(roles=("roles",)).roles == (ClaimPath(("roles",)),)


def test_a_claim_name_with_dots_is_one_literal_segment():
    namespaced = ClaimPath.of("https://app.example/roles")
    claims = {"https://app.example/roles": ["admin"], "https://app": {"example/roles": ["x"]}}

    assert read_names(claims, (namespaced,)) == {"admin"}
    # Dotted, the same text walks into another claim: that is why literal segments exist.
    assert read_names(claims, (ClaimPath.parse("https://app.example/roles"),)) == {"x"}


@pytest.mark.parametrize(
    "dotted", ["", ".roles", "roles.", "realm..roles", "a.{tenant}.roles", "a.b{client_id}"]
)
def test_malformed_paths_are_refused_at_configuration(dotted: str):
    with pytest.raises(ConfigurationError):
        ClaimPaths(roles=(dotted,))


def test_a_bare_string_instead_of_a_tuple_is_refused_not_split_into_letters():
    with pytest.raises(ConfigurationError, match=r"tuple of paths"):
        ClaimPaths(roles="roles")  # type: ignore[arg-type]


def test_overlong_paths_and_too_many_paths_are_refused():
    with pytest.raises(ConfigurationError):
        ClaimPath.parse(".".join("abcdefghi"))
    with pytest.raises(ConfigurationError):
        ClaimPaths(roles=tuple(f"r{n}" for n in range(9)))


def test_the_client_id_placeholder_is_one_segment_even_with_dots():
    bound = KEYCLOAK.bind("web.app")

    claims = {"resource_access": {"web.app": {"roles": ["editor"]}}}
    assert read_names(claims, bound.paths("roles")) == {"editor"}
    assert not bound.needs_client_id


@pytest.mark.parametrize(
    "value", ["admin", "admin editor", 1, True, None, {"admin": True}, ["admin", 1], [["admin"]]]
)
def test_roles_that_are_not_an_array_of_strings_give_no_value(value: object):
    assert read_names({"roles": value}, ClaimPaths(roles=("roles",)).roles) is None


def test_frozen_claims_read_like_plain_json():
    frozen = MappingProxyType({"realm": MappingProxyType({"roles": ("admin",)})})

    assert read_names(frozen, (ClaimPath.parse("realm.roles"),)) == {"admin"}


def test_several_paths_are_joined_and_one_malformed_value_denies_them_all():
    paths = KEYCLOAK.bind("web").paths("roles")
    claims = {"realm_access": {"roles": ["user"]}, "resource_access": {"web": {"roles": ["ed"]}}}

    assert read_names(claims, paths) == {"user", "ed"}
    assert read_names({"realm_access": {"roles": ["user"]}}, paths) == {"user"}
    claims["resource_access"] = {"web": {"roles": "ed"}}
    assert read_names(claims, paths) is None
    assert read_names({}, paths) is None
    assert read_names({"realm_access": ["roles"]}, paths) is None


def test_an_empty_array_is_a_value_with_no_names():
    assert read_names({"roles": []}, ClaimPaths(roles=("roles",)).roles) == frozenset()


@pytest.mark.parametrize("value", ["", 42, ["org_1"], None, {"id": "org_1"}])
def test_an_organization_must_be_a_non_empty_string(value: object):
    assert read_organization({"oid": value}, ClaimPaths(organization=("oid",)).organization) is None


def test_two_organization_paths_must_agree():
    paths = ClaimPaths(organization=("oid", "org.id")).organization

    assert read_organization({"oid": "org_1", "org": {"id": "org_1"}}, paths) == "org_1"
    assert read_organization({"oid": "org_1", "org": {"id": "org_2"}}, paths) is None
    assert read_organization({"org": {"id": "org_2"}}, paths) == "org_2"


def test_a_session_keeps_only_what_the_paths_read():
    claims = {
        "sub": "alice",
        "email": "alice@example.com",
        "realm_access": {"roles": ("admin",), "other": 1},
        "resource_access": {"web": {"roles": ("ed",)}, "account": {"roles": ("x",)}},
        "jti": "t-1",
    }

    kept = kept_claims(claims, KEYCLOAK.bind("web"))

    assert kept == {
        "realm_access": {"roles": ["admin"]},
        "resource_access": {"web": {"roles": ["ed"]}},
    }
    assert read_names(kept, KEYCLOAK.bind("web").paths("roles")) == {"admin", "ed"}


def test_a_session_keeps_malformed_values_as_they_are_so_they_still_deny():
    kept = kept_claims({"roles": "admin"}, ClaimPaths(roles=("roles",)))

    assert read_names(kept, ClaimPaths(roles=("roles",)).roles) is None


def test_access_token_rules_refuse_symmetric_algorithms_and_empty_audiences():
    with pytest.raises(ConfigurationError):
        AccessTokenClaims(algorithms=("HS256",))
    with pytest.raises(ConfigurationError):
        AccessTokenClaims(audience=())
    assert AccessTokenClaims().audiences("web") == ("web",)


def test_an_api_policy_must_name_the_client_instead_of_the_placeholder():
    with pytest.raises(ConfigurationError, match="client_id"):
        AccessTokenPolicy(
            issuers=("https://op.example",),
            jwks_uri="https://op.example/keys",
            audience=("api",),
            claim_paths=KEYCLOAK,
        )


def test_an_oauth2_provider_cannot_read_access_tokens():
    with pytest.raises(ConfigurationError, match="access_token_claims"):
        github(client_id="c", client_secret="s", access_token_claims=AccessTokenClaims())
