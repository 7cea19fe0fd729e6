"""Signed email links: bound to a person and a purpose, expiring, tamper-evident, and rotatable."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from alerts.signed_links import MAX_AGE, LinkError, LinkSigner, person_links

KEY_NEW = "new-link-key-0123456789abcdef"
KEY_OLD = "old-link-key-0123456789abcdef"
ISSUED = datetime(2026, 12, 7, 7, 30, tzinfo=UTC)


def test_a_link_names_its_person_and_purpose():
    signer = LinkSigner([KEY_NEW])
    token = signer.sign("page", "c01", ISSUED)
    link = signer.verify("page", token, ISSUED + timedelta(days=3))
    assert (link.person_id, link.purpose, link.issued_at) == ("c01", "page", ISSUED)


def test_the_same_email_gets_the_same_link_bytes():
    # A re-composed email after a crash must be identical, so the link depends on the email's clock only.
    assert LinkSigner([KEY_NEW]).sign("page", "c01", ISSUED) == LinkSigner([KEY_NEW]).sign("page", "c01", ISSUED)


def test_a_link_for_one_purpose_is_refused_for_another():
    signer = LinkSigner([KEY_NEW])
    page = signer.sign("page", "c01", ISSUED)
    with pytest.raises(LinkError, match="not valid"):
        signer.verify("confirm-erase", page, ISSUED)


@pytest.mark.parametrize("change", [
    lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),   # the signature
    lambda t: "x" + t[1:],                               # the payload
    lambda t: t[: len(t) // 2],                          # cut short by a mail client
])
def test_a_changed_link_is_refused(change):
    signer = LinkSigner([KEY_NEW])
    with pytest.raises(LinkError, match="not valid"):
        signer.verify("page", change(signer.sign("page", "c01", ISSUED)), ISSUED)


def test_an_old_link_expires_and_says_so():
    signer = LinkSigner([KEY_NEW])
    token = signer.sign("confirm-export", "c01", ISSUED)
    signer.verify("confirm-export", token, ISSUED + MAX_AGE["confirm-export"])
    with pytest.raises(LinkError, match="expired"):
        signer.verify("confirm-export", token, ISSUED + MAX_AGE["confirm-export"] + timedelta(seconds=1))


def test_rotation_signs_with_the_new_key_and_still_accepts_the_old():
    old_token = LinkSigner([KEY_OLD]).sign("page", "c01", ISSUED)
    rotating = LinkSigner([KEY_NEW, KEY_OLD])
    assert rotating.verify("page", old_token, ISSUED).person_id == "c01"
    new_token = rotating.sign("page", "c01", ISSUED)
    assert LinkSigner([KEY_NEW]).verify("page", new_token, ISSUED).person_id == "c01"
    with pytest.raises(LinkError):
        LinkSigner([KEY_NEW]).verify("page", old_token, ISSUED)


def test_short_keys_are_refused():
    with pytest.raises(ValueError, match="16 characters"):
        LinkSigner(["short"])


def test_person_links_carry_no_address_and_point_at_the_public_url():
    links = person_links("https://ew.example.org/", LinkSigner([KEY_NEW]), "c01", ISSUED)
    assert links.page.startswith("https://ew.example.org/me/")
    assert links.pause == links.page + "/pause"
    assert links.unsubscribe.startswith("https://ew.example.org/unsubscribe/")
    assert "@" not in links.page + links.unsubscribe
