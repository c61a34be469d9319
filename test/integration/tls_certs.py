"""Test PKI: CAs, server and client certificates (ECDSA P-256 or RSA) with any SANs and validity,
written as PEM files. Uses python3-cryptography (Debian), so expired and not-yet-valid
certificates are as easy as good ones.

    pki = Pki(tempdir)
    ca = pki.ca("test-ca")
    srv = pki.issue(ca, "example.com", dns=["example.com", "*.example.com"], ip=["127.0.0.1"])
    srv.cert_path, srv.key_path, srv.chain_pem(), srv.key_pem()
    pki = class_pki(cls)        # in setUpClass: a Pki in a temp dir removed after the class
"""

import datetime
import ipaddress
import os
import shutil

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

import harness


def _key(kind):
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


def _name(cn, org="Sluice Tests"):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, org)])


class Issued:
    def __init__(self, pki, name, cert, key, issuer=None):
        self.pki = pki
        self.name = name
        self.cert = cert
        self.key = key
        self.issuer = issuer
        self.cert_path = os.path.join(pki.dir, name + ".crt")
        self.key_path = os.path.join(pki.dir, name + ".key")
        self.chain_path = os.path.join(pki.dir, name + ".chain.crt")
        with open(self.cert_path, "wb") as f:
            f.write(self.cert_pem().encode())
        with open(self.key_path, "wb") as f:
            f.write(self.key_pem().encode())
        with open(self.chain_path, "wb") as f:
            f.write(self.chain_pem().encode())

    def cert_pem(self):
        return self.cert.public_bytes(serialization.Encoding.PEM).decode()

    def key_pem(self):
        return self.key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()).decode()

    def chain_pem(self):
        """Leaf, then intermediates (not the root)."""
        out = self.cert_pem()
        issuer = self.issuer
        while issuer is not None and issuer.issuer is not None:
            out += issuer.cert_pem()
            issuer = issuer.issuer
        return out

    def fingerprint(self):
        return self.cert.fingerprint(hashes.SHA256()).hex()


class Pki:
    def __init__(self, directory):
        self.dir = directory
        os.makedirs(directory, exist_ok=True)

    def ca(self, name, issuer=None, key="ec"):
        k = _key(key)
        now = datetime.datetime.utcnow()
        builder = (x509.CertificateBuilder()
                   .subject_name(_name(name))
                   .issuer_name(issuer.cert.subject if issuer else _name(name))
                   .public_key(k.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(days=1))
                   .not_valid_after(now + datetime.timedelta(days=3650))
                   .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                   .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True,
                                                crl_sign=True, content_commitment=False,
                                                key_encipherment=False, data_encipherment=False,
                                                key_agreement=False, encipher_only=False,
                                                decipher_only=False), critical=True))
        signer = issuer.key if issuer else k
        cert = builder.sign(signer, hashes.SHA256())
        return Issued(self, name, cert, k, issuer)

    def issue(self, ca, cn, dns=(), ip=(), uri=(), email=(), key="ec", days=365,
              not_before=None, not_after=None, client=False, name=None):
        k = _key(key)
        now = datetime.datetime.utcnow()
        nb = not_before or now - datetime.timedelta(days=1)
        na = not_after or now + datetime.timedelta(days=days)
        sans = ([x509.DNSName(d) for d in dns] +
                [x509.IPAddress(ipaddress.ip_address(a)) for a in ip] +
                [x509.UniformResourceIdentifier(u) for u in uri] +
                [x509.RFC822Name(e) for e in email])
        builder = (x509.CertificateBuilder()
                   .subject_name(_name(cn))
                   .issuer_name(ca.cert.subject)
                   .public_key(k.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(nb)
                   .not_valid_after(na)
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None),
                                  critical=True)
                   .add_extension(x509.ExtendedKeyUsage(
                       [ExtendedKeyUsageOID.CLIENT_AUTH if client
                        else ExtendedKeyUsageOID.SERVER_AUTH]), critical=False))
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        cert = builder.sign(ca.key, hashes.SHA256())
        return Issued(self, name or cn.replace("*", "star").replace("/", "_"), cert, k, ca)

    def expired(self, ca, cn, **kw):
        now = datetime.datetime.utcnow()
        return self.issue(ca, cn, not_before=now - datetime.timedelta(days=30),
                          not_after=now - datetime.timedelta(days=1), **kw)


def class_pki(test_class):
    """A Pki in a temp dir of its own, removed when `test_class` is done (call it from
    setUpClass; SLUICE_KEEP_TMP keeps it)."""
    directory = harness.make_tempdir("sluice-pki-")
    if not os.environ.get("SLUICE_KEEP_TMP"):
        test_class.addClassCleanup(shutil.rmtree, directory, True)
    return Pki(directory)
