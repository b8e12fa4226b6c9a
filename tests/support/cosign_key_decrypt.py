#!/usr/bin/env python3
"""Decrypt a cosign/sigstore encrypted private key independently of berth (test helper).

Usage: cosign_key_decrypt.py KEYFILE OUT_DER
The password is read from the environment variable BERTH_TEST_PASSWORD (may be empty).

scrypt comes from Python's hashlib (OpenSSL), nacl/secretbox from libsodium through ctypes, so a
key written by berth is checked against a second implementation of the format (spec 2.2).
Exit status: 0 decrypted, 1 authentication failed, 2 malformed file.
"""
import base64
import ctypes
import ctypes.util
import hashlib
import json
import os
import re
import sys

LABELS = ("ENCRYPTED SIGSTORE PRIVATE KEY", "ENCRYPTED COSIGN PRIVATE KEY")


def fail(code, msg):
    sys.stderr.write("cosign_key_decrypt: %s\n" % msg)
    sys.exit(code)


def main():
    if len(sys.argv) != 3:
        fail(2, "usage: cosign_key_decrypt.py KEYFILE OUT_DER")
    text = open(sys.argv[1], encoding="ascii").read()
    m = re.search(r"-----BEGIN ([A-Z ]+)-----\n(.*?)-----END \1-----", text, re.S)
    if not m or m.group(1) not in LABELS:
        fail(2, "no encrypted cosign PEM block")
    doc = json.loads(base64.b64decode("".join(m.group(2).split())))
    kdf, cipher = doc["kdf"], doc["cipher"]
    if kdf["name"] != "scrypt" or cipher["name"] != "nacl/secretbox":
        fail(2, "unexpected algorithms")
    params = kdf["params"]
    password = os.environ.get("BERTH_TEST_PASSWORD", "").encode()
    key = hashlib.scrypt(password, salt=base64.b64decode(kdf["salt"]), n=params["N"],
                         r=params["r"], p=params["p"], dklen=32, maxmem=256 * 1024 * 1024)
    nonce = base64.b64decode(cipher["nonce"])
    ct = base64.b64decode(doc["ciphertext"])
    if len(nonce) != 24 or len(ct) <= 16:
        fail(2, "bad nonce or ciphertext size")
    lib = ctypes.CDLL(ctypes.util.find_library("sodium") or "libsodium.so.23")
    if lib.sodium_init() < 0:
        fail(2, "sodium_init failed")
    out = ctypes.create_string_buffer(len(ct) - 16)
    if lib.crypto_secretbox_open_easy(out, ct, ctypes.c_ulonglong(len(ct)), nonce, key) != 0:
        fail(1, "secretbox authentication failed")
    with open(sys.argv[2], "wb") as f:
        f.write(out.raw)


main()
