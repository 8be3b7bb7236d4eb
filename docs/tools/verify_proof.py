#!/usr/bin/env python3
"""Checks an auditlog event proof (GET /v1/events/{id}/proof) with nothing
but Python's hashlib and the `cryptography` package.

usage: verify_proof.py PROOF.json PUBLIC_KEY_HEX

See docs/INTEGRITY.md for the formats this follows.
"""
import hashlib
import json
import struct
import sys

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


def sha256(*parts):
    h = hashlib.sha256()
    for p in parts:
        h.update(p)
    return h.digest()


def main(proof_path, public_key_hex):
    proof = json.load(open(proof_path))
    public_key = bytes.fromhex(public_key_hex)

    # 1. The checkpoint: a 224-byte record, signed over its first 152 bytes.
    record = bytes.fromhex(proof["checkpoint"]["record"])
    assert len(record) == 224 and record[:8] == b"AUDLCKPT", "not a checkpoint record"
    (position,) = struct.unpack_from("<Q", record, 40)
    chain_head = record[48:80]
    signer = record[120:152]
    signature = record[152:216]
    assert signer == public_key, "checkpoint signed by another key"
    Ed25519PublicKey.from_public_bytes(public_key).verify(signature, record[:152])

    # 2. The chain from the event to the checkpoint.
    event = proof["event"].encode("utf-8")
    value = bytes.fromhex(proof["chain_before"])
    value = sha256(b"\x01", value, sha256(b"\x00", event))
    following = bytes.fromhex(proof["following"])
    for i in range(0, len(following), 32):
        value = sha256(b"\x01", value, following[i:i + 32])
    end = proof["position"] + 1 + len(following) // 32
    assert end == position, f"proof ends at {end}, checkpoint at {position}"
    assert value == chain_head, "event does not lead to the signed chain head"
    print(f"OK: event {json.loads(event)['id']} is at position {proof['position']}, "
          f"covered by checkpoint {proof['checkpoint']['sequence']} ({position} events)")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
