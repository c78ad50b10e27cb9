import type { NatsConnection } from "@nats-io/transport-node";
import { NatsSettingError, connectNats, natsUrl, type BusOptions, type NatsOptions } from "../../runner/index.ts";
import { UsageError } from "../errors.ts";

/** Connection flags shared by the commands that talk to NATS; each falls back to a JOBCHAIN_NATS_* variable. */
export const natsFlags = {
  nats: { type: "string" },
  "nats-user": { type: "string" },
  "nats-password": { type: "string" },
  "nats-token": { type: "string" },
  "nats-creds": { type: "string" },
  "nats-nkey": { type: "string" },
  "nats-tls-ca": { type: "string" },
  "nats-tls-cert": { type: "string" },
  "nats-tls-key": { type: "string" },
} as const;

export const busFlags = {
  "ack-wait": { type: "string" },
  "max-deliver": { type: "string" },
  "duplicate-window": { type: "string" },
  replicas: { type: "string" },
} as const;

export const NATS_USAGE = `NATS connection (each also read from JOBCHAIN_NATS_URL, _USER, _PASSWORD, _TOKEN, _CREDS, _NKEY, _TLS_CA, _TLS_CERT, _TLS_KEY):
  --nats URL            server URL(s), comma separated (default nats://127.0.0.1:4222)
  --nats-user U --nats-password P | --nats-token T | --nats-creds FILE | --nats-nkey FILE
  --nats-tls-ca FILE --nats-tls-cert FILE --nats-tls-key FILE`;

/** The flag of busFlags that matters beyond one server. */
export const REPLICAS_USAGE = `  --replicas N          copies JetStream keeps of each stream and bucket (1, 3 or 5; default 1, JOBCHAIN_NATS_REPLICAS):
                        3 on a three-server cluster, so the loss of any one server loses and stops nothing`;

type Values = Partial<Record<keyof typeof natsFlags | keyof typeof busFlags, string | undefined>>;

export function natsOptions(v: Values, name: string): NatsOptions {
  return {
    url: v.nats,
    user: v["nats-user"],
    password: v["nats-password"],
    token: v["nats-token"],
    credsFile: v["nats-creds"],
    nkeyFile: v["nats-nkey"],
    tlsCa: v["nats-tls-ca"],
    tlsCert: v["nats-tls-cert"],
    tlsKey: v["nats-tls-key"],
    name,
  };
}

function seconds(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value.replace(/s$/, ""));
  if (!(n > 0)) throw new UsageError(`--${flag} must be a positive number of seconds, got '${value}'`);
  return n;
}

/** --replicas, else $JOBCHAIN_NATS_REPLICAS; undefined when neither is set (see BusOptions.replicas). */
export function replicasOption(value: string | undefined, env: NodeJS.ProcessEnv = process.env): number | undefined {
  const text = value ?? env.JOBCHAIN_NATS_REPLICAS;
  if (text === undefined || text === "") return undefined;
  const n = Number(text);
  if (!(Number.isInteger(n) && n >= 1 && n <= 5)) {
    throw new UsageError(
      `${value !== undefined ? "--replicas" : "JOBCHAIN_NATS_REPLICAS"} must be an integer from 1 to 5, got '${text}'`,
      "1 for one NATS server, 3 for a three-server JetStream cluster",
    );
  }
  return n;
}

export function busOptions(v: Values): BusOptions {
  const maxDeliver = v["max-deliver"] === undefined ? undefined : Number(v["max-deliver"]);
  if (maxDeliver !== undefined && !(Number.isInteger(maxDeliver) && maxDeliver >= 1)) {
    throw new UsageError(`--max-deliver must be a positive integer, got '${v["max-deliver"]}'`);
  }
  return {
    ackWait: seconds("ack-wait", v["ack-wait"]),
    maxDeliver,
    duplicateWindow: seconds("duplicate-window", v["duplicate-window"]),
    replicas: replicasOption(v.replicas),
  };
}

/** Connects with the command's flags; a refused or unauthorised connection becomes a UsageError naming the server. */
export async function connectFromFlags(v: Values, name: string, waitForServer = false): Promise<NatsConnection> {
  const url = natsUrl(v.nats);
  // A runner waits for its server (it may start first); say so instead of hanging silently.
  const notice = waitForServer ? setTimeout(() => process.stderr.write(`jobchain: waiting for NATS at ${url} ...\n`), 2000) : undefined;
  try {
    return await connectNats({ ...natsOptions(v, name), waitForServer });
  } catch (err) {
    throw connectionError(err, url);
  } finally {
    clearTimeout(notice);
  }
}

/** Turns a connection failure into a message that names the server and what to check (exit 2, no stack). */
function connectionError(err: unknown, url: string): UsageError {
  const msg = (err as Error)?.message ?? String(err);
  if (err instanceof NatsSettingError) return new UsageError(err.message, err.hint);
  const hint = /certificate|TLS|SSL|altname/i.test(msg)
    ? "check --nats-tls-ca (and the server certificate's names: the client checks 'localhost' for a 127.0.0.1 URL)"
    : /Authorization|AUTHORIZATION|authentication/i.test(msg)
      ? "pass the server's credentials: --nats-user/--nats-password, --nats-token, --nats-creds or --nats-nkey"
      : "start nats-server with JetStream (nats-server -js), or pass --nats URL and credentials";
  return new UsageError(`cannot connect to NATS at ${url}: ${msg}`, hint);
}
