"""Loading certificates and keys: what must work, and what must stop Kamailio
at startup with one log line naming the parameter (and the file)."""

import os
import re

from harness import BAD_LEVELS, KEY_PASSWORD


def assert_refused(t, modparams, *patterns):
    """Kamailio exits non-zero, and one error line matches every pattern."""
    server = t.kamailio_fails(modparams)
    assert server.logged(BAD_LEVELS, *patterns), \
        "no error line matches all of %s" % (patterns,)


def write(t, name, data):
    path = t.path(name)
    with open(path, "wb") as f:
        f.write(data)
    return path


def test_missing_certificate_file(t):
    missing = t.path("no-such-cert.pem")
    assert_refused(t, {"certificate": missing},
                   r"certificate", re.escape(missing))


def test_private_key_file_with_garbage(t):
    garbage = write(t, "garbage.key", b"this is not a PEM private key\n")
    assert_refused(t, {"private_key": garbage},
                   r"private_key", re.escape(garbage))


def test_private_key_is_a_directory(t):
    directory = t.path("key-dir")
    os.mkdir(directory)
    assert_refused(t, {"private_key": directory},
                   r"private_key", re.escape(directory))


def test_private_key_not_matching_certificate(t):
    assert_refused(t, {"private_key": t.certs.other_key},
                   r"private_key", r"(?i)match")


def test_encrypted_key_without_password(t):
    assert_refused(t, {"private_key": t.certs.encrypted_server_key},
                   r"(?i)password")


def test_encrypted_key_with_wrong_password(t):
    assert_refused(t, {"private_key": t.certs.encrypted_server_key,
                       "private_key_password": "wrong"},
                   r"(?i)password")


def test_unknown_tls_method(t):
    assert_refused(t, {"tls_method": "TLSv9"}, r"tls_method")


def test_cipher_list_matching_nothing(t):
    assert_refused(t, {"cipher_list": "NOSUCHCIPHER"}, r"cipher_list")


def test_empty_ca_list(t):
    empty = write(t, "empty-ca.pem", b"")
    assert_refused(t, {"ca_list": empty}, r"ca_list", re.escape(empty))


def test_ca_list_with_garbage(t):
    garbage = write(t, "garbage-ca.pem", b"no certificates in here\n")
    assert_refused(t, {"ca_list": garbage}, r"ca_list", re.escape(garbage))


def test_encrypted_key_with_right_password(t):
    server = t.kamailio({"private_key": t.certs.encrypted_server_key,
                         "private_key_password": KEY_PASSWORD})
    with t.connect(server) as conn:
        assert conn.request(conn.build("OPTIONS")).status == 200


def test_default_certificate_beside_config(t):
    # No certificate/private_key: the module reads cert.pem (certificate and
    # key in one file) from the config file's directory, which is not
    # Kamailio's working directory here.
    with open(t.certs.server_cert, "rb") as cert, \
            open(t.certs.server_key, "rb") as key:
        pem = cert.read() + key.read()
    server = t.kamailio({"certificate": None, "private_key": None},
                        files={"cert.pem": pem})
    with t.connect(server) as conn:
        assert conn.request(conn.build("OPTIONS")).status == 200
