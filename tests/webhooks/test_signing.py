"""The signature scheme, checked by the verification snippet README.md gives receivers."""

import re
import time
from pathlib import Path

from django.conf import settings

from webhooks import signing


def readme_verify():
    """`verify` as README.md defines it, run as a receiver would copy it."""
    readme = (Path(settings.BASE_DIR) / "README.md").read_text()
    snippet = re.search(r"<!-- webhook-verify -->\n```python\n(.*?)```", readme, re.S)
    assert snippet, "README.md lost its verification snippet"
    namespace: dict = {}
    exec(snippet.group(1), namespace)  # noqa: S102 - our own README
    return namespace["verify"]


def test_the_readme_snippet_accepts_a_signed_body_and_refuses_any_change():
    verify = readme_verify()
    body = b'{"id":"e1","type":"order.processed"}'
    header = signing.signature_header(secrets_=["whsec_a"], timestamp=int(time.time()), body=body)

    assert verify("whsec_a", body, header)
    assert not verify("whsec_b", body, header)
    assert not verify("whsec_a", body + b" ", header)


def test_the_snippet_refuses_an_old_timestamp_even_when_signed():
    verify = readme_verify()
    body = b"{}"
    old = int(time.time()) - 600
    header = signing.signature_header(secrets_=["whsec_a"], timestamp=old, body=body)

    assert not verify("whsec_a", body, header)


def test_during_a_rotation_either_secret_verifies():
    verify = readme_verify()
    body = b"{}"
    header = signing.signature_header(
        secrets_=["whsec_new", "whsec_old"], timestamp=int(time.time()), body=body
    )

    assert header.count("v1=") == 2
    assert verify("whsec_new", body, header)
    assert verify("whsec_old", body, header)
    assert not verify("whsec_other", body, header)


def test_the_signature_is_hmac_sha256_over_timestamp_dot_body():
    # Computed independently: printf '1.b' | openssl dgst -sha256 -hmac k
    expected = "2946e37a45bb02a0bf1bf1a7d9219543801fedd301f9f485aebd72c928639bea"
    assert signing.signature(secret="k", timestamp=1, body=b"b") == expected
