import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { type Hex, isHex, parseEventLogs, size } from 'viem';
import { z } from 'zod';
import { cellRegistryAbi, debtChannelsAbi } from '../../chain/abi/contracts.generated.js';
import { BaseError } from '../../chain/errors/index.js';
import {
  channelId,
  type Deal,
  InvalidSignatureError,
  parseChannelSignature,
  signDeal,
  signVoucher,
  toChannelSignature,
  toSignedVoucherArg,
  type Voucher,
} from '../../chain/typed-data/index.js';
import { amountFor } from '../../chain/units/index.js';
import { type Context, connect, connectionHelp, connectionOptions } from '../context.js';
import { formatAmount } from '../format.js';
import { type Io, json } from '../io.js';
import { arg, parseOptions, parseSubcommand, UsageError } from '../options.js';
import { tokenInfo } from '../token.js';

export const channelHelp = `gridcell channel: bilateral deals in debt payment channels

Usage:
  gridcell channel deal --buyer CELL --seller CELL --meter ADDRESS --price P --max-wh WH
                        --first T [--last T] --collateral AMOUNT [--expiry UNIX] [--salt N]
                                     sign new deal terms; prints the deal document (JSON)
  gridcell channel deal FILE         co-sign the deal document FILE; prints it signed
  gridcell channel open FILE         open the channel of a deal both agents signed
  gridcell channel voucher FILE --seq N --wh WH [--amount AMOUNT]
                                     the buyer's agent signs what it owes in all; prints it
  gridcell channel redeem FILE --readings FILE [--voucher FILE]
                                     pay the seller: with the latest voucher (backed by the
                                     latest reading in --readings), or with the meter's
                                     signed readings alone
  gridcell channel close FILE        start a unilateral close (the challenge window runs)
  gridcell channel settle FILE       after the window: pay, refund, record any debt
  gridcell channel show ID           a channel's terms and state

FILE is a deal document as \`channel deal\` prints it: the terms, the channel id and the
agents' signatures. The deal is signed by --key, which must be the buyer's or the seller's
agent key (its signature goes in the matching place); both sign the same document before it
opens. The seller's meter measures the deal with its export counter.

P is the price in tokens per kWh (e.g. 0.20), AMOUNT whole tokens (e.g. 1.6). --last
defaults to --first, --expiry (until when the signed deal may be opened) to an hour from
now, --salt to a random number. --amount defaults to WH at the deal's price. --readings is
a JSON array of signed readings {reading, r, vs} of the deal's meter, signed for the
channels contract (the meter oracle writes them). The channel counts from the lowest
counter its readings have shown: redeem the deal's first reading once without --voucher
so that vouchers count from the deal's start.

${connectionHelp}`;

const maxUint = (bits: number) => (n: bigint) => n < 2n ** BigInt(bits);
const uintString = z
  .union([z.string().regex(/^\d+$/, 'expected a non-negative integer'), z.number().int().nonnegative()])
  .transform((v) => BigInt(v));
const hexBytes = (bytes: number) =>
  z
    .string()
    .refine((s) => isHex(s, { strict: true }) && size(s as Hex) === bytes, {
      message: `expected 0x and ${bytes * 2} hex digits`,
    })
    .transform((s) => s as Hex);
const signatureString = z
  .string()
  .refine((s) => isHex(s, { strict: true }) && [64, 65].includes(size(s as Hex)), {
    message: 'expected a 64- or 65-byte signature in hex',
  })
  .transform((s) => s as Hex);

const dealSchema = z.object({
  buyerCell: uintString,
  sellerCell: uintString,
  sellerMeter: arg.address,
  pricePerKWh: uintString.refine(maxUint(96), 'expected below 2^96'),
  maxWhPerInterval: uintString.refine(maxUint(64), 'expected below 2^64'),
  firstInterval: uintString.refine(maxUint(64), 'expected below 2^64'),
  lastInterval: uintString.refine(maxUint(64), 'expected below 2^64'),
  collateral: uintString.refine(maxUint(96), 'expected below 2^96'),
  expiry: uintString.refine(maxUint(64), 'expected below 2^64'),
  salt: uintString.refine(maxUint(64), 'expected below 2^64'),
});

/** The deal document `channel deal` prints and the other actions read. */
const dealDocumentSchema = z.object({
  channel: hexBytes(32).optional(),
  deal: dealSchema,
  buyerSignature: signatureString.optional(),
  sellerSignature: signatureString.optional(),
});
type DealDocument = z.output<typeof dealDocumentSchema>;

const signedVoucherSchema = z.object({
  voucher: z.object({
    channel: hexBytes(32),
    seq: uintString.refine(maxUint(32), 'expected below 2^32').transform(Number),
    cumulativeWh: uintString.refine(maxUint(64), 'expected below 2^64'),
    cumulativeAmount: uintString.refine(maxUint(96), 'expected below 2^96'),
  }),
  r: hexBytes(32),
  vs: hexBytes(32),
});

const signedReadingsSchema = z
  .array(
    z.object({
      reading: z.object({
        meter: arg.address,
        cell: uintString,
        interval: uintString.refine(maxUint(64), 'expected below 2^64'),
        importWh: uintString.refine(maxUint(64), 'expected below 2^64'),
        exportWh: uintString.refine(maxUint(64), 'expected below 2^64'),
        importCumWh: uintString.refine(maxUint(64), 'expected below 2^64'),
        exportCumWh: uintString.refine(maxUint(64), 'expected below 2^64'),
        seq: uintString.refine(maxUint(64), 'expected below 2^64'),
      }),
      r: hexBytes(32),
      vs: hexBytes(32),
    }),
  )
  .min(1, 'expected at least one signed reading');

const termsSchema = (decimals: number) =>
  z.object({
    buyer: arg.cellId,
    seller: arg.cellId,
    meter: arg.address,
    price: arg.tokenAmount(decimals).refine(maxUint(96), 'expected below 2^96 base units'),
    'max-wh': arg.positiveInt.refine(maxUint(64), 'expected below 2^64'),
    first: arg.uint.refine(maxUint(64), 'expected below 2^64'),
    last: arg.uint.refine(maxUint(64), 'expected below 2^64').optional(),
    collateral: arg.tokenAmount(decimals).refine(maxUint(96), 'expected below 2^96 base units'),
    expiry: arg.uint.refine(maxUint(64), 'expected below 2^64').optional(),
    salt: arg.uint.refine(maxUint(64), 'expected below 2^64').optional(),
  });

const voucherOptionsSchema = (decimals: number) =>
  z.object({
    seq: arg.positiveInt.refine(maxUint(32), 'expected below 2^32'),
    wh: arg.uint.refine(maxUint(64), 'expected below 2^64'),
    amount: arg.tokenAmount(decimals).refine(maxUint(96), 'expected below 2^96 base units').optional(),
  });

const statusNames = ['none', 'open', 'closing', 'closed'] as const;

/** `gridcell channel ...` */
export async function channelCommand(argv: string[], io: Io): Promise<void> {
  const parsed = parseSubcommand(
    argv,
    {
      ...connectionOptions,
      buyer: { type: 'string' },
      seller: { type: 'string' },
      meter: { type: 'string' },
      price: { type: 'string' },
      'max-wh': { type: 'string' },
      first: { type: 'string' },
      last: { type: 'string' },
      collateral: { type: 'string' },
      expiry: { type: 'string' },
      salt: { type: 'string' },
      seq: { type: 'string' },
      wh: { type: 'string' },
      amount: { type: 'string' },
      readings: { type: 'string' },
      voucher: { type: 'string' },
    },
    'channel',
    ['deal', 'open', 'voucher', 'redeem', 'close', 'settle', 'show'],
    channelHelp,
    io,
  );
  if (!parsed) return;
  const { values, action, rest } = parsed;
  const ctx = await connect(values, io);
  const channels = { address: ctx.manifest.contracts.channels, abi: debtChannelsAbi } as const;
  const token = await tokenInfo(ctx.publicClient, ctx.manifest.contracts.token);
  const fmt = (v: bigint) => formatAmount(v, token.decimals, token.symbol);
  const fileArg = () => parseOptions(z.tuple([z.string().min(1)]), rest, 'channel')[0];

  switch (action) {
    case 'deal': {
      const termFlags = Object.keys(termsSchema(token.decimals).shape).filter((k) => k in values);
      if (rest.length > 0 && termFlags.length > 0) {
        throw new UsageError(
          `deal: either new terms or a FILE to co-sign, not both (received FILE and --${termFlags.join(', --')})`,
        );
      }
      const document: DealDocument =
        rest.length > 0
          ? readDealDocument(ctx, fileArg(), 'deal')
          : { deal: await newTerms(ctx, values, token) };
      const signer = await ctx.signer();
      const [buyer, seller] = await agentsOf(ctx, document.deal);
      if (signer.address !== buyer && signer.address !== seller) {
        throw new BaseError(
          `key ${signer.address} is the agent of neither the buyer (cell ${document.deal.buyerCell}) nor the seller (cell ${document.deal.sellerCell})`,
          { details: 'a deal is signed by the agent keys of its two cells (`gridcell cells show CELL`)' },
        );
      }
      const { signature } = await signDeal(signer, ctx.channelsDomain, document.deal);
      const signed: DealDocument = {
        ...document,
        channel: channelId(ctx.channelsDomain, document.deal),
        ...(signer.address === buyer ? { buyerSignature: toChannelSignature(signature) } : {}),
        ...(signer.address === seller ? { sellerSignature: toChannelSignature(signature) } : {}),
      };
      io.out(json(signed));
      return;
    }
    case 'open': {
      const document = readDealDocument(ctx, fileArg(), 'open');
      const { buyerSignature, sellerSignature } = document;
      if (!buyerSignature || !sellerSignature) {
        throw new UsageError(
          `open: the deal still needs the ${buyerSignature ? 'seller' : 'buyer'}'s signature: \`gridcell channel deal FILE --key AGENT\``,
        );
      }
      const { deal } = document;
      const r = await ctx.send({
        ...channels,
        functionName: 'open',
        args: [deal, buyerSignature, sellerSignature],
      });
      const id = channelId(ctx.channelsDomain, deal);
      ctx.print(
        `channel ${id} opened: cell ${deal.sellerCell} delivers up to ${deal.maxWhPerInterval} Wh to cell ${deal.buyerCell} in each interval ${deal.firstInterval}-${deal.lastInterval}; ${fmt(deal.collateral)} collateral from the buyer's wallet`,
        { channel: id, ...deal, transaction: r.transactionHash },
      );
      return;
    }
    case 'voucher': {
      const { deal } = readDealDocument(ctx, fileArg(), 'voucher');
      const o = parseOptions(voucherOptionsSchema(token.decimals), values, 'channel');
      const signer = await ctx.signer();
      const [buyer] = await agentsOf(ctx, deal);
      if (signer.address !== buyer) {
        throw new BaseError(
          `key ${signer.address} is not the agent of the buyer, cell ${deal.buyerCell}: only it signs vouchers`,
        );
      }
      const voucher: Voucher = {
        channel: channelId(ctx.channelsDomain, deal),
        seq: Number(o.seq),
        cumulativeWh: o.wh,
        cumulativeAmount: o.amount ?? amountFor(o.wh, deal.pricePerKWh),
      };
      io.out(json(toSignedVoucherArg(await signVoucher(signer, ctx.channelsDomain, voucher))));
      return;
    }
    case 'redeem': {
      const { deal } = readDealDocument(ctx, fileArg(), 'redeem');
      const files = parseOptions(
        z.object({
          readings: z.string({ error: 'pass --readings FILE' }).min(1),
          voucher: z.string().min(1).optional(),
        }),
        values,
        'channel',
      );
      const readings = readJson(files.readings, signedReadingsSchema, 'redeem');
      const id = channelId(ctx.channelsDomain, deal);
      const before = await ctx.publicClient.readContract({
        ...channels,
        functionName: 'channelOf',
        args: [id, deal.sellerMeter],
      });
      let r: Awaited<ReturnType<typeof ctx.send>>;
      if (files.voucher) {
        const voucher = readJson(files.voucher, signedVoucherSchema, 'redeem');
        // The latest reading proves the most: the meter's counters only grow.
        const latest = readings.reduce((a, b) => (b.reading.interval > a.reading.interval ? b : a));
        r = await ctx.send({ ...channels, functionName: 'redeem', args: [deal, voucher, latest] });
      } else {
        r = await ctx.send({ ...channels, functionName: 'redeemWithReadings', args: [deal, readings] });
      }
      const after = await ctx.publicClient.readContract({
        ...channels,
        functionName: 'channelOf',
        args: [id, deal.sellerMeter],
      });
      const amount = after.paid - before.paid;
      ctx.print(
        `channel ${id}: ${amount > 0n ? `paid the seller ${fmt(amount)}` : 'nothing paid now'}; ${fmt(after.owed)} owed, ${fmt(after.paid)} paid in all, ${fmt(after.collateral)} collateral left`,
        {
          channel: id,
          amount,
          owed: after.owed,
          paid: after.paid,
          collateral: after.collateral,
          seq: after.seq,
          transaction: r.transactionHash,
        },
      );
      return;
    }
    case 'close': {
      const { deal } = readDealDocument(ctx, fileArg(), 'close');
      const r = await ctx.send({ ...channels, functionName: 'startClose', args: [deal] });
      const id = channelId(ctx.channelsDomain, deal);
      const state = await ctx.publicClient.readContract({
        ...channels,
        functionName: 'channelOf',
        args: [id, deal.sellerMeter],
      });
      ctx.print(
        `channel ${id}: closing; newer vouchers count until ${state.closeDeadline} (Unix s), then anyone may settle`,
        {
          channel: id,
          closeDeadline: state.closeDeadline,
          endInterval: state.endInterval,
          transaction: r.transactionHash,
        },
      );
      return;
    }
    case 'settle': {
      const { deal } = readDealDocument(ctx, fileArg(), 'settle');
      const r = await ctx.send({ ...channels, functionName: 'settle', args: [deal] });
      const id = channelId(ctx.channelsDomain, deal);
      const [closed] = parseEventLogs({ abi: debtChannelsAbi, eventName: 'ChannelClosed', logs: r.logs });
      if (!closed) throw new Error('settle succeeded without a ChannelClosed event');
      const { owed, paid, refunded, debt, debtId } = closed.args;
      ctx.print(
        `channel ${id}: closed; the seller got ${fmt(paid)} in all, ${fmt(refunded)} went back to the buyer${debt > 0n ? `, ${fmt(debt)} is the buyer's debt ${debtId}` : ''}`,
        { channel: id, owed, paid, refunded, debt, debtId, transaction: r.transactionHash },
      );
      return;
    }
    case 'show': {
      const [id] = parseOptions(z.tuple([hexBytes(32)]), rest, 'channel');
      await showChannel(ctx, id, fmt);
      return;
    }
  }
}

/** Reads and validates a JSON file; a problem names the file, the field and what was expected. */
function readJson<S extends z.ZodType>(file: string, schema: S, action: string): z.output<S> {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (cause) {
    throw new UsageError(`${action}: cannot read JSON from ${file}: ${(cause as Error).message}`);
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new UsageError(`${action}: ${file}: ${issue?.path.join('.') || '(root)'}: ${issue?.message}`);
  }
  return parsed.data;
}

/** A deal document whose channel id, if it names one, is this deployment's id of its deal. */
function readDealDocument(ctx: Context, file: string, action: string): DealDocument {
  const document = readJson(file, dealDocumentSchema, action);
  const id = channelId(ctx.channelsDomain, document.deal);
  if (document.channel !== undefined && document.channel.toLowerCase() !== id) {
    throw new UsageError(
      `${action}: ${file}: channel ${document.channel} is not this deployment's id of the deal (${id}): a deal signed for another chain or contract?`,
    );
  }
  for (const key of ['buyerSignature', 'sellerSignature'] as const) {
    const signature = document[key];
    if (signature === undefined) continue;
    try {
      parseChannelSignature(signature);
    } catch (error) {
      if (error instanceof InvalidSignatureError)
        throw new UsageError(`${action}: ${file}: ${key}: ${error.shortMessage}`);
      throw error;
    }
  }
  return document;
}

/** New terms from the command line. */
async function newTerms(
  ctx: Context,
  values: Record<string, unknown>,
  token: { decimals: number },
): Promise<Deal> {
  const o = parseOptions(termsSchema(token.decimals), values, 'channel');
  const now = (await ctx.publicClient.getBlock()).timestamp;
  return {
    buyerCell: o.buyer,
    sellerCell: o.seller,
    sellerMeter: o.meter,
    pricePerKWh: o.price,
    maxWhPerInterval: o['max-wh'],
    firstInterval: o.first,
    lastInterval: o.last ?? o.first,
    collateral: o.collateral,
    expiry: o.expiry ?? now + 3600n,
    salt: o.salt ?? randomBytes(8).readBigUInt64BE(),
  };
}

/** The agent keys of the deal's buyer and seller cells. */
async function agentsOf(ctx: Context, deal: Deal) {
  const registry = { address: ctx.manifest.contracts.registry, abi: cellRegistryAbi } as const;
  const [buyer, seller] = await Promise.all([
    ctx.publicClient.readContract({ ...registry, functionName: 'cellOf', args: [deal.buyerCell] }),
    ctx.publicClient.readContract({ ...registry, functionName: 'cellOf', args: [deal.sellerCell] }),
  ]);
  return [buyer.agent, seller.agent] as const;
}

async function showChannel(ctx: Context, id: Hex, fmt: (v: bigint) => string) {
  const channels = { address: ctx.manifest.contracts.channels, abi: debtChannelsAbi } as const;
  const [opened] = await ctx.publicClient.getContractEvents({
    ...channels,
    eventName: 'ChannelOpened',
    args: { channel: id },
    fromBlock: ctx.manifest.deploymentBlock,
  });
  if (!opened?.args.sellerMeter) {
    ctx.print(`channel ${id}: unknown`, { channel: id, status: statusNames[0] });
    return;
  }
  const t = opened.args;
  // The deal's meter finds the close record of a closing channel (IDebtChannels.channelOf).
  // Once closed, the channel's slot no longer holds the deadline: the events tell the close.
  const events = { ...channels, args: { channel: id }, fromBlock: ctx.manifest.deploymentBlock } as const;
  const [state, [closing], [closed]] = await Promise.all([
    ctx.publicClient.readContract({
      ...channels,
      functionName: 'channelOf',
      args: [id, opened.args.sellerMeter],
    }),
    ctx.publicClient.getContractEvents({ ...events, eventName: 'ChannelClosing' }),
    ctx.publicClient.getContractEvents({ ...events, eventName: 'ChannelClosed' }),
  ]);
  const status = statusNames[state.status] ?? `status ${state.status}`;
  const closeDeadline = closing?.args.deadline ?? state.closeDeadline;
  const endInterval = closing?.args.endInterval ?? state.endInterval;
  const outcome = closed?.args;
  const lines = [
    `channel ${id}: ${status}`,
    `  cell ${t.sellerCell} delivers to cell ${t.buyerCell}, measured by meter ${t.sellerMeter}`,
    `  up to ${t.maxWhPerInterval} Wh per interval ${t.firstInterval}-${t.lastInterval} at ${fmt(t.pricePerKWh ?? 0n)}/kWh`,
    `  collateral ${fmt(state.collateral)} locked, ${fmt(state.paid)} paid of ${fmt(state.owed)} owed, latest voucher ${state.seq}`,
    ...(closeDeadline > 0
      ? [`  unilateral close: deadline ${closeDeadline} (Unix s), delivery ends with interval ${endInterval}`]
      : []),
    ...(outcome
      ? [
          `  closed: ${fmt(outcome.paid ?? 0n)} paid of ${fmt(outcome.owed ?? 0n)} owed, ${fmt(outcome.refunded ?? 0n)} refunded, ${fmt(outcome.debt ?? 0n)} debt`,
        ]
      : []),
    ...(state.withdrawalAt > 0
      ? [
          `  withdrawal of ${fmt(state.withdrawalAmount)} requested, possible from ${state.withdrawalAt} (Unix s)`,
        ]
      : []),
  ];
  ctx.print(lines.join('\n'), {
    channel: id,
    status,
    buyerCell: t.buyerCell,
    sellerCell: t.sellerCell,
    sellerMeter: t.sellerMeter,
    pricePerKWh: t.pricePerKWh,
    maxWhPerInterval: t.maxWhPerInterval,
    firstInterval: t.firstInterval,
    lastInterval: t.lastInterval,
    collateral: state.collateral,
    paid: state.paid,
    owed: state.owed,
    seq: state.seq,
    baselineCumWh: state.baselineCumWh,
    closeDeadline,
    endInterval,
    ...(outcome ? { refunded: outcome.refunded, debt: outcome.debt, debtId: outcome.debtId } : {}),
    withdrawalAmount: state.withdrawalAmount,
    withdrawalAt: state.withdrawalAt,
  });
}
