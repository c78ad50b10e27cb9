// Decentralised NATS authentication for tests: an operator, an account with JetStream, and a user with a .creds
// file, signed with nkeys the way `nsc` would, so the harness can start a server in operator mode with the
// account preloaded (resolver: MEMORY).
import { createHash } from "node:crypto";
import { createAccount, createOperator, createUser, type KeyPair } from "@nats-io/nkeys";

const b64url = (data: Uint8Array | string) => Buffer.from(data).toString("base64url");

// RFC 4648 base32 without padding, as the Go jwt library writes a claim's id.
function base32(data: Uint8Array): string {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = 0;
  let value = 0;
  let out = "";
  for (const byte of data) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += alphabet[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += alphabet[(value << (5 - bits)) & 31];
  return out;
}

function sign(issuer: KeyPair, subject: string, name: string, nats: Record<string, unknown>): string {
  const header = b64url(JSON.stringify({ typ: "JWT", alg: "ed25519-nkey" }));
  const claims: Record<string, unknown> = { jti: "", iat: Math.floor(Date.now() / 1000), iss: issuer.getPublicKey(), name, sub: subject, nats: { ...nats, version: 2 } };
  claims.jti = base32(createHash("sha256").update(JSON.stringify(claims)).digest());
  const payload = b64url(JSON.stringify(claims));
  const signature = b64url(issuer.sign(new TextEncoder().encode(`${header}.${payload}`)));
  return `${header}.${payload}.${signature}`;
}

const UNLIMITED = { subs: -1, data: -1, payload: -1, imports: -1, exports: -1, wildcards: true, conn: -1, leaf: -1 };

export interface OperatorSetup {
  /** Lines for the server configuration: operator, system account, resolver with the accounts preloaded. */
  serverConfig: string;
  /** Contents of a .creds file for a user of the JetStream-enabled account. */
  creds: string;
  /** Contents of a .creds file signed by an account the server does not know. */
  foreignCreds: string;
}

function credsFile(jwt: string, user: KeyPair): string {
  return [
    "-----BEGIN NATS USER JWT-----",
    jwt,
    "------END NATS USER JWT------",
    "",
    "************************* IMPORTANT *************************",
    "NKEY Seed printed below can be used to sign and prove identity.",
    "NKEYs are sensitive and should be treated as secrets.",
    "",
    "-----BEGIN USER NKEY SEED-----",
    new TextDecoder().decode(user.getSeed()),
    "------END USER NKEY SEED------",
    "",
  ].join("\n");
}

export function operatorSetup(): OperatorSetup {
  const operator = createOperator();
  const system = createAccount();
  const account = createAccount();
  const user = createUser();
  const operatorJwt = sign(operator, operator.getPublicKey(), "jobchain-test-operator", { type: "operator", system_account: system.getPublicKey() });
  const systemJwt = sign(operator, system.getPublicKey(), "SYS", { type: "account", limits: UNLIMITED });
  const accountJwt = sign(operator, account.getPublicKey(), "APP", {
    type: "account",
    limits: { ...UNLIMITED, mem_storage: -1, disk_storage: -1, streams: -1, consumer: -1 },
  });
  const userClaims = { type: "user", pub: {}, sub: {}, subs: -1, data: -1, payload: -1 };
  const userJwt = sign(account, user.getPublicKey(), "runner", userClaims);
  const stranger = createAccount();
  const foreignUser = createUser();
  return {
    serverConfig: [
      `operator: ${operatorJwt}`,
      `system_account: ${system.getPublicKey()}`,
      "resolver: MEMORY",
      "resolver_preload: {",
      `  ${system.getPublicKey()}: ${systemJwt}`,
      `  ${account.getPublicKey()}: ${accountJwt}`,
      "}",
    ].join("\n"),
    creds: credsFile(userJwt, user),
    foreignCreds: credsFile(sign(stranger, foreignUser.getPublicKey(), "stranger", userClaims), foreignUser),
  };
}
