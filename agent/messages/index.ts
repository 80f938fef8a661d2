/**
 * The agents' gossipsub wire format: topics and one zod schema per message. Every message is
 * one JSON envelope, versioned (`v`), typed (`type`), bound to a grid zone, signed twice: by
 * libp2p (StrictSign: the sending peer) and, through the envelope's `binding`, by the on-chain
 * agent key of the cell (or the key of the service) it speaks for. docs/agent.md documents it.
 *
 * Integers that may exceed 2^53 (cell ids, Wh, prices, intervals) travel as decimal strings.
 */
import { getAddress, type Hex, isAddress, isHex } from 'viem';
import { z } from 'zod';

/** Version of the envelope; a peer speaking another version is rejected, not guessed at. */
export const WIRE_VERSION = 1;

/** Largest envelope accepted, bytes. A voucher with its two readings is about 1.6 KiB. */
export const DEFAULT_MAX_MESSAGE_BYTES = 8 * 1024;

/** The three topic kinds of a zone. */
export type TopicKind = 'market' | 'negotiation' | 'services';

/** Topic names: `gridcell/v1/{zone}/agents/{kind}`. */
export const agentTopics = {
  /** Calls for proposals (contract net, FIPA `cfp`). */
  market: (zone: string) => `gridcell/v1/${zone}/agents/market`,
  /** The rest of a contract-net conversation, the vouchers of open deals and their close. */
  negotiation: (zone: string) => `gridcell/v1/${zone}/agents/negotiation`,
  /** Service announcements, demand-response events, load-shedding requests and plans. */
  services: (zone: string) => `gridcell/v1/${zone}/agents/services`,
} as const;

const decimal = z
  .string()
  .regex(/^(0|[1-9][0-9]{0,77})$/, 'a non-negative decimal integer as a string')
  .transform((s) => BigInt(s));
const positive = decimal.refine((n) => n > 0n, 'greater than 0');
const address = z
  .string()
  .refine((s) => isAddress(s, { strict: false }), 'a 20-byte hex address')
  .transform((s) => getAddress(s));
const bytes32 = z
  .string()
  .refine((s) => isHex(s, { strict: true }) && s.length === 66, '32 bytes as 0x-prefixed hex')
  .transform((s) => s.toLowerCase() as Hex);
const signature = z.object({ r: bytes32, vs: bytes32 });
const conversationId = z.string().regex(/^[A-Za-z0-9_-]{8,64}$/, '8-64 letters, digits, - or _');
const unix = z.number().int().nonnegative();

const readingSchema = z.object({
  meter: address,
  cell: decimal,
  interval: decimal,
  importWh: decimal,
  exportWh: decimal,
  importCumWh: decimal,
  exportCumWh: decimal,
  seq: decimal,
});
/** A meter reading with the meter's signature (under the domain the receiver needs). */
const signedReadingSchema = z.object({ reading: readingSchema, signature });

const dealSchema = z.object({
  buyerCell: positive,
  sellerCell: positive,
  sellerMeter: address,
  pricePerKWh: positive,
  maxWhPerInterval: positive,
  firstInterval: decimal,
  lastInterval: decimal,
  collateral: decimal,
  expiry: decimal,
  salt: decimal,
});

/** What a cell or a service asks of the others: contract-net `cfp` (buyer initiates). */
const cfp = z.object({
  type: z.literal('cfp'),
  conversation: conversationId,
  /** Energy the buyer wants in each interval of [firstInterval, lastInterval]. */
  whPerInterval: positive,
  firstInterval: decimal,
  lastInterval: decimal,
  /** Proposals are taken until then (Unix s, the deployment's clock). */
  deadline: unix,
});

const propose = z.object({
  type: z.literal('propose'),
  conversation: conversationId,
  to: positive,
  sellerMeter: address,
  pricePerKWh: positive,
  maxWhPerInterval: positive,
  /** The offer holds until then. */
  validUntil: unix,
});

const refuse = z.object({
  type: z.literal('refuse'),
  conversation: conversationId,
  to: positive,
  reason: z.string().max(200),
});

/** The initiator accepts: the complete deal with its own signature (it is the buyer). */
const acceptProposal = z.object({
  type: z.literal('accept-proposal'),
  conversation: conversationId,
  to: positive,
  deal: dealSchema,
  buyerSignature: signature,
  deadline: unix,
});

const rejectProposal = z.object({
  type: z.literal('reject-proposal'),
  conversation: conversationId,
  to: positive,
  reason: z.string().max(200),
});

/** The participant reports the result: the channel opened on chain. */
const inform = z.object({
  type: z.literal('inform'),
  conversation: conversationId,
  to: positive,
  channel: bytes32,
  transaction: bytes32,
});

const failure = z.object({
  type: z.literal('failure'),
  conversation: conversationId,
  to: positive,
  reason: z.string().max(400),
});

/** The buyer's cumulative voucher and the seller meter's readings that back it. */
const voucher = z.object({
  type: z.literal('voucher'),
  to: positive,
  voucher: z.object({
    channel: bytes32,
    seq: z.number().int().positive().max(0xffffffff),
    cumulativeWh: decimal,
    cumulativeAmount: decimal,
  }),
  signature,
  /** The latest reading (the one `redeem` takes) and the first (it sets the channel's baseline). */
  reading: signedReadingSchema,
  firstReading: signedReadingSchema,
});

/**
 * Closing a channel cooperatively (docs/agent.md, "Closing the channel"): once the deal's
 * delivery is over, the seller proposes the final amount (its latest voucher's
 * `cumulativeAmount`) with its EIP-712 `CloseChannel` signature; the buyer answers with its
 * own signature over the same amount, or refuses with a reason. Either side can then call
 * `closeCooperative`. Resent until answered: gossipsub does not guarantee delivery.
 */
const closePropose = z.object({
  type: z.literal('close-propose'),
  to: positive,
  channel: bytes32,
  finalAmount: decimal,
  /** The voucher the amount comes from (0: none, the amount is what was paid). */
  seq: z.number().int().nonnegative().max(0xffffffff),
  signature,
  /** The seller takes the unilateral path after this (Unix s, the deployment's clock). */
  deadline: unix,
});

const closeAccept = z.object({
  type: z.literal('close-accept'),
  to: positive,
  channel: bytes32,
  finalAmount: decimal,
  signature,
});

const closeRefuse = z.object({
  type: z.literal('close-refuse'),
  to: positive,
  channel: bytes32,
  reason: z.string().max(400),
});

/** A service application announces itself (IDEA plug & play: discovery by the agents). */
const serviceAnnounce = z.object({
  type: z.literal('service-announce'),
  kind: z.enum(['demand-response', 'load-shedding']),
  description: z.string().max(200),
});

/** Demand response (P2O): the operator asks for a reduction of import in one interval. */
const drEvent = z.object({
  type: z.literal('dr-event'),
  event: conversationId,
  interval: decimal,
  requestedReductionWh: positive,
  pricePerKWh: positive,
  deadline: unix,
});

const drResponse = z.object({
  type: z.literal('dr-response'),
  event: conversationId,
  to: address,
  offeredWh: decimal,
  /** The import the cell would have had without the event: the reduction is measured against it. */
  baselineImportWh: decimal,
  meter: address,
});

const drAward = z.object({
  type: z.literal('dr-award'),
  event: conversationId,
  to: positive,
  awardedWh: decimal,
  interval: decimal,
});

const drSettled = z.object({
  type: z.literal('dr-settled'),
  event: conversationId,
  to: positive,
  verifiedWh: decimal,
  amount: decimal,
  transaction: bytes32.optional(),
});

/** A cell that cannot hold its balance asks the load-shedding service for a plan. */
const shedRequest = z.object({
  type: z.literal('shed-request'),
  request: conversationId,
  to: address,
  interval: decimal,
  shortfallWh: positive,
  loads: z
    .array(
      z.object({
        id: z.string().regex(/^[A-Za-z0-9_-]{1,32}$/),
        wh: positive,
        priority: z.number().int().min(0).max(100),
      }),
    )
    .min(1)
    .max(64),
});

const shedPlan = z.object({
  type: z.literal('shed-plan'),
  request: conversationId,
  to: positive,
  interval: decimal,
  open: z.array(z.string().regex(/^[A-Za-z0-9_-]{1,32}$/)).max(64),
  shedWh: decimal,
  coversShortfall: z.boolean(),
});

/** Test traffic and liveness: carries nothing but a counter. */
const ping = z.object({ type: z.literal('ping'), n: z.number().int().nonnegative() });

export const bodySchema = z.discriminatedUnion('type', [
  cfp,
  propose,
  refuse,
  acceptProposal,
  rejectProposal,
  inform,
  failure,
  voucher,
  closePropose,
  closeAccept,
  closeRefuse,
  serviceAnnounce,
  drEvent,
  drResponse,
  drAward,
  drSettled,
  shedRequest,
  shedPlan,
  ping,
]);
export type Body = z.output<typeof bodySchema>;
export type BodyType = Body['type'];
export type BodyOf<T extends BodyType> = Extract<Body, { type: T }>;

/** Where each message type may travel; anything else on a topic is rejected. */
export const topicOf: Record<BodyType, TopicKind> = {
  cfp: 'market',
  ping: 'market',
  propose: 'negotiation',
  refuse: 'negotiation',
  'accept-proposal': 'negotiation',
  'reject-proposal': 'negotiation',
  inform: 'negotiation',
  failure: 'negotiation',
  voucher: 'negotiation',
  'close-propose': 'negotiation',
  'close-accept': 'negotiation',
  'close-refuse': 'negotiation',
  'service-announce': 'services',
  'dr-event': 'services',
  'dr-response': 'services',
  'dr-award': 'services',
  'dr-settled': 'services',
  'shed-request': 'services',
  'shed-plan': 'services',
};

/** Who speaks: a cell (its on-chain agent key signs the binding) or a service (its own key). */
export const senderSchema = z.union([
  z.object({ cell: positive }).strict(),
  z.object({ service: address }).strict(),
]);
export type Sender = z.output<typeof senderSchema>;

/** The signed binding of a libp2p peer id to the sender's key (agent/net/binding.ts). */
export const bindingSchema = z.object({
  peerId: z.string().min(40).max(64),
  expiry: unix,
  signature,
});

export const envelopeSchema = z.object({
  v: z.literal(WIRE_VERSION),
  zone: z.string().regex(/^[a-z0-9-]{1,32}$/),
  from: senderSchema,
  binding: bindingSchema,
  /** Unix s (the deployment's clock) when sent; older than the node's `maxAgeSeconds` is late. */
  sentAt: unix,
  body: bodySchema,
});
export type Envelope = z.output<typeof envelopeSchema>;

/** JSON for the wire: bigints as decimal strings. */
export function encodeEnvelope(envelope: Envelope): Uint8Array {
  return new TextEncoder().encode(
    JSON.stringify(envelope, (_k, v) => (typeof v === 'bigint' ? v.toString() : v)),
  );
}

export type DecodeResult =
  | { ok: true; envelope: Envelope }
  | { ok: false; reason: 'oversized' | 'malformed' | 'version'; detail: string };

/**
 * Decodes and validates one envelope without throwing: "what failed, what was received, what
 * was expected" comes back as `detail`.
 */
export function decodeEnvelope(data: Uint8Array, maxBytes: number = DEFAULT_MAX_MESSAGE_BYTES): DecodeResult {
  if (data.byteLength > maxBytes) {
    return {
      ok: false,
      reason: 'oversized',
      detail: `received ${data.byteLength} bytes, expected at most ${maxBytes}`,
    };
  }
  let json: unknown;
  const text = new TextDecoder().decode(data);
  try {
    json = JSON.parse(text);
  } catch {
    return {
      ok: false,
      reason: 'malformed',
      detail: `not JSON: received ${JSON.stringify(text.slice(0, 60))}`,
    };
  }
  const version = (json as { v?: unknown } | null)?.v;
  if (version !== WIRE_VERSION) {
    return {
      ok: false,
      reason: 'version',
      detail: `received wire version ${JSON.stringify(version)}, expected ${WIRE_VERSION}`,
    };
  }
  const parsed = envelopeSchema.safeParse(json);
  if (parsed.success) return { ok: true, envelope: parsed.data };
  const issues = parsed.error.issues
    .slice(0, 3)
    .map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`)
    .join('; ');
  return { ok: false, reason: 'malformed', detail: issues };
}

/** The deadline after which a message is of no use (late ones are ignored, not rejected). */
export function deadlineOf(body: Body): number | undefined {
  switch (body.type) {
    case 'cfp':
    case 'accept-proposal':
    case 'dr-event':
    case 'close-propose':
      return body.deadline;
    case 'propose':
      return body.validUntil;
    default:
      return undefined;
  }
}

/** A sender as a short label for logs and counters: `cell 12` or `service 0xab…`. */
export function senderLabel(sender: Sender): string {
  return 'cell' in sender ? `cell ${sender.cell}` : `service ${sender.service}`;
}
