// sigstore-verify.mjs: verify a Sigstore bundle with sigstore-js (@sigstore/bundle +
// @sigstore/verify), offline, with a public key as the only trust material. It is the
// independent check of the bundles berth writes (tests/integration/test_signing.sh); nothing
// here is shared with berth's C code.
//
//   node sigstore-verify.mjs BUNDLE.json KEY.pub [SUBJECT_DIGEST]
//
// Checks: the JSON parses as a bundle and round-trips through sigstore-js's protobuf form
// unchanged (no unknown or misspelled fields, which cosign's parser would reject); the
// verification-material hint names KEY.pub (base64 SHA-256 of its DER SPKI); the DSSE signature
// verifies over the PAE with KEY.pub (no transparency log, no timestamps: tlogThreshold 0); and,
// given SUBJECT_DIGEST ("sha256:<hex>"), the in-toto statement's subject carries that digest
// with cosign's signature predicate type. Prints "VERIFIED ..." and exits 0, else exits 1.
import { createHash, createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isDeepStrictEqual } from 'node:util';

import { bundleFromJSON, bundleToJSON } from '@sigstore/bundle';
import { Verifier, toSignedEntity, toTrustMaterial } from '@sigstore/verify';

const PREDICATE = 'https://sigstore.dev/cosign/sign/v1';

function fail(msg) {
  console.error(`sigstore-verify: ${msg}`);
  process.exit(1);
}

const [bundlePath, keyPath, subject] = process.argv.slice(2);
if (!bundlePath || !keyPath) fail('usage: sigstore-verify.mjs BUNDLE.json KEY.pub [SUBJECT_DIGEST]');

try {
  const json = JSON.parse(readFileSync(bundlePath, 'utf8'));
  const bundle = bundleFromJSON(json);
  if (!isDeepStrictEqual(bundleToJSON(bundle), json)) {
    fail(`bundle does not round-trip: ${JSON.stringify(bundleToJSON(bundle))}`);
  }
  const key = createPublicKey(readFileSync(keyPath));
  const fingerprint = createHash('sha256')
    .update(key.export({ type: 'spki', format: 'der' }))
    .digest('base64');
  const keyFinder = (hint) => {
    if (hint !== fingerprint) fail(`bundle hint "${hint}" does not name ${keyPath} (${fingerprint})`);
    return { publicKey: key, validFor: () => true };
  };
  const root = { certificateAuthorities: [], timestampAuthorities: [], tlogs: [], ctlogs: [] };
  const verifier = new Verifier(toTrustMaterial(root, keyFinder), {
    tlogThreshold: 0,
    ctlogThreshold: 0,
    timestampThreshold: 0,
  });
  verifier.verify(toSignedEntity(bundle));

  if (subject) {
    const env = bundle.content.dsseEnvelope;
    if (!env) fail('bundle has no DSSE envelope');
    const statement = JSON.parse(Buffer.from(env.payload).toString('utf8'));
    const hex = subject.replace(/^sha256:/, '');
    if (statement.predicateType !== PREDICATE) fail(`predicateType is ${statement.predicateType}`);
    if (!(statement.subject || []).some((s) => s.digest && s.digest.sha256 === hex)) {
      fail(`statement subject does not name ${subject}: ${JSON.stringify(statement.subject)}`);
    }
  }
  console.log(`VERIFIED ${bundlePath} with ${keyPath} (hint ${fingerprint})`);
} catch (e) {
  fail(`${e.code ? e.code + ': ' : ''}${e.message}`);
}
