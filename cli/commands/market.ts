import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { clearingPoolAbi } from '../../chain/abi/contracts.generated.js';
import { quoteClearing } from '../../chain/clearing/quoteClearing.js';
import { type Order, signOrder, toSignedOrderArg } from '../../chain/typed-data/index.js';
import { Side } from '../../chain/units/index.js';
import { type Context, connect, connectionHelp, connectionOptions } from '../context.js';
import { formatAmount, sideName } from '../format.js';
import { type Io, json } from '../io.js';
import { arg, parseOptions, parseSubcommand, UsageError } from '../options.js';
import { tokenInfo } from '../token.js';

export const marketHelp = `gridcell market: orders in the clearing pool

Usage:
  gridcell market buy CELL --energy-wh WH --price P [--interval T] [--nonce N] [--print]
  gridcell market sell CELL --energy-wh WH --price P [--interval T] [--nonce N] [--print]
  gridcell market submit FILE       relay signed orders printed with --print (a JSON array)
  gridcell market cancel CELL INTERVAL NONCE
  gridcell market orders CELL       the cell's orders and what became of them
  gridcell market interval T        an interval's times, price, volume and schedule
  gridcell market clear T           clear interval T (anyone may, after gate closure)

P is the limit price in tokens per kWh (e.g. 0.25). The order is signed by --key, which must
be the cell's agent key. --interval defaults to the next interval whose gate is open; --nonce
to the cell's next order number in it. --print prints the signed order instead of sending it.

${connectionHelp}`;

const orderSchema = (decimals: number) =>
  z.object({
    'energy-wh': arg.positiveInt,
    price: arg.tokenAmount(decimals),
    interval: arg.uint.optional(),
    nonce: arg.uint.refine((n) => n < 16n, 'expected 0 to 15').optional(),
  });

const signedOrderSchema = z.object({
  order: z.object({
    cell: z.coerce.bigint(),
    interval: z.coerce.bigint(),
    side: z.number().int().min(0).max(1),
    energyWh: z.coerce.bigint(),
    limitPrice: z.coerce.bigint(),
    nonce: z.number().int().min(0),
    expiry: z.coerce.bigint(),
  }),
  r: z.string().regex(/^0x[0-9a-fA-F]{64}$/),
  vs: z.string().regex(/^0x[0-9a-fA-F]{64}$/),
});

/** `gridcell market ...` */
export async function marketCommand(argv: string[], io: Io): Promise<void> {
  const parsed = parseSubcommand(
    argv,
    {
      ...connectionOptions,
      'energy-wh': { type: 'string' },
      price: { type: 'string' },
      interval: { type: 'string' },
      nonce: { type: 'string' },
      print: { type: 'boolean' },
    },
    'market',
    ['buy', 'sell', 'submit', 'cancel', 'orders', 'interval', 'clear'],
    marketHelp,
    io,
  );
  if (!parsed) return;
  const { values, action, rest } = parsed;
  const ctx = await connect(values, io);
  const pool = { address: ctx.manifest.contracts.pool, abi: clearingPoolAbi } as const;
  const token = await tokenInfo(ctx.publicClient, ctx.manifest.contracts.token);
  const fmtPrice = (p: bigint) => `${formatAmount(p, token.decimals, token.symbol)}/kWh`;

  switch (action) {
    case 'buy':
    case 'sell': {
      const [cellId] = parseOptions(z.tuple([arg.cellId]), rest, 'market');
      const o = parseOptions(orderSchema(token.decimals), values, 'market');
      const L = ctx.manifest.pool.intervalSeconds;
      const now = (await ctx.publicClient.getBlock()).timestamp;
      const interval = o.interval ?? nextOpenInterval(now, L, ctx.manifest.pool.gateClosureLead);
      const nonce = o.nonce ?? (await nextNonce(ctx, interval, cellId));
      const order: Order = {
        cell: cellId,
        interval,
        side: action === 'buy' ? Side.Buy : Side.Sell,
        energyWh: o['energy-wh'],
        limitPrice: o.price,
        nonce: Number(nonce),
        expiry: interval * L - ctx.manifest.pool.gateClosureLead,
      };
      const signed = await signOrder(await ctx.signer(), ctx.poolDomain, order);
      const payload = toSignedOrderArg(signed);
      if (values.print) {
        io.out(json([payload]));
        return;
      }
      const r = await ctx.send({ ...pool, functionName: 'submitOrders', args: [[payload]] });
      ctx.print(
        `cell ${cellId}: ${action} ${order.energyWh} Wh at up to ${fmtPrice(order.limitPrice)} in interval ${interval} (order ${nonce})`,
        { ...order, transaction: r.transactionHash },
      );
      return;
    }
    case 'submit': {
      const [file] = parseOptions(z.tuple([z.string().min(1)]), rest, 'market');
      const raw = parseJsonFile(file);
      const parsed = z
        .array(signedOrderSchema)
        .min(1)
        .safeParse(Array.isArray(raw) ? raw : [raw]);
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        throw new UsageError(`submit: ${file}: ${issue?.path.join('.')}: ${issue?.message}`);
      }
      const batch = parsed.data.map((s) => ({ ...s, r: s.r as `0x${string}`, vs: s.vs as `0x${string}` }));
      const r = await ctx.send({ ...pool, functionName: 'submitOrders', args: [batch] });
      ctx.print(`submitted ${batch.length} signed order(s)`, {
        orders: batch.length,
        transaction: r.transactionHash,
      });
      return;
    }
    case 'cancel': {
      const [cellId, interval, nonce] = parseOptions(
        z.tuple([arg.cellId, arg.uint, arg.uint.refine((n) => n < 16n, 'expected 0 to 15')]),
        rest,
        'market',
      );
      const r = await ctx.send({
        ...pool,
        functionName: 'cancelOrder',
        args: [cellId, interval, Number(nonce)],
      });
      ctx.print(
        `cell ${cellId}: order ${nonce} of interval ${interval} cancelled; its escrow returns at claim`,
        {
          cellId,
          interval,
          nonce,
          transaction: r.transactionHash,
        },
      );
      return;
    }
    case 'orders': {
      const [cellId] = parseOptions(z.tuple([arg.cellId]), rest, 'market');
      const logs = await ctx.publicClient.getContractEvents({
        ...pool,
        eventName: 'OrderSubmitted',
        args: { cell: cellId },
        fromBlock: ctx.manifest.deploymentBlock,
      });
      const rows = await Promise.all(
        logs.map(async ({ args }) => {
          const [position, state] = await Promise.all([
            ctx.publicClient.readContract({
              ...pool,
              functionName: 'positionOf',
              args: [args.interval ?? 0n, cellId],
            }),
            ctx.publicClient.readContract({
              ...pool,
              functionName: 'intervalOf',
              args: [args.interval ?? 0n],
            }),
          ]);
          const cancelled = (position.cancelMask & (1 << (args.nonce ?? 0))) !== 0;
          return {
            interval: args.interval,
            nonce: args.nonce,
            side: sideName(args.side ?? 0),
            energyWh: args.energyWh,
            limitPrice: args.limitPrice,
            status: cancelled ? 'cancelled' : state.cleared ? 'cleared' : 'open',
            cellScheduledWh: BigInt(position.filledWh),
          };
        }),
      );
      ctx.print(
        rows.length
          ? rows
              .map(
                (o) =>
                  `interval ${o.interval} #${o.nonce}: ${o.side} ${o.energyWh} Wh at ${fmtPrice(o.limitPrice ?? 0n)}, ${o.status}${o.status === 'cleared' ? ` (cell scheduled ${o.cellScheduledWh} Wh)` : ''}`,
              )
              .join('\n')
          : `cell ${cellId} has no orders`,
        rows,
      );
      return;
    }
    case 'interval': {
      const [t] = parseOptions(z.tuple([arg.uint]), rest, 'market');
      await showInterval(ctx, t, fmtPrice);
      return;
    }
    case 'clear': {
      const [t] = parseOptions(z.tuple([arg.uint]), rest, 'market');
      const { orders, cancelled } = await ordersOf(ctx, t);
      const quote = quoteClearing(orders, cancelled);
      const r = await ctx.send({
        ...pool,
        functionName: 'clear',
        args: [t, quote.priceLow, quote.priceHigh, orders],
      });
      ctx.print(
        `interval ${t} cleared at ${fmtPrice(quote.price)}, ${quote.volumeWh} Wh from ${orders.length} orders`,
        {
          interval: t,
          price: quote.price,
          volumeWh: quote.volumeWh,
          orders: orders.length,
          transaction: r.transactionHash,
        },
      );
      return;
    }
  }
}

/** The cell's next order nonce in an interval, skipping nonces cancelled before use (as the pool does). */
async function nextNonce(ctx: Context, interval: bigint, cellId: bigint): Promise<bigint> {
  const position = await ctx.publicClient.readContract({
    address: ctx.manifest.contracts.pool,
    abi: clearingPoolAbi,
    functionName: 'positionOf',
    args: [interval, cellId],
  });
  let nonce = position.orderCount;
  while (nonce < 16 && (position.cancelMask & (1 << nonce)) !== 0) nonce++;
  return BigInt(nonce);
}

/** The first interval whose gate is still open at `now`. */
export function nextOpenInterval(now: bigint, intervalSeconds: bigint, lead: bigint): bigint {
  let t = now / intervalSeconds + 1n;
  while (t * intervalSeconds - lead <= now) t++;
  return t;
}

function parseJsonFile(file: string): unknown {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch (cause) {
    throw new UsageError(`submit: cannot read JSON from ${file}: ${(cause as Error).message}`);
  }
}

/** Every accepted order of interval t in submission order (from the pool's events), and which are cancelled. */
export async function ordersOf(ctx: Context, t: bigint): Promise<{ orders: Order[]; cancelled: boolean[] }> {
  const pool = { address: ctx.manifest.contracts.pool, abi: clearingPoolAbi } as const;
  const logs = await ctx.publicClient.getContractEvents({
    ...pool,
    eventName: 'OrderSubmitted',
    args: { interval: t },
    fromBlock: ctx.manifest.deploymentBlock,
  });
  const orders: Order[] = logs.map(({ args }) => ({
    cell: args.cell ?? 0n,
    interval: t,
    side: args.side ?? 0,
    energyWh: args.energyWh ?? 0n,
    limitPrice: args.limitPrice ?? 0n,
    nonce: args.nonce ?? 0,
    expiry: args.expiry ?? 0n,
  }));
  const masks = new Map<bigint, number>();
  for (const o of orders) {
    if (!masks.has(o.cell)) {
      const p = await ctx.publicClient.readContract({
        ...pool,
        functionName: 'positionOf',
        args: [t, o.cell],
      });
      masks.set(o.cell, p.cancelMask);
    }
  }
  return { orders, cancelled: orders.map((o) => ((masks.get(o.cell) ?? 0) & (1 << o.nonce)) !== 0) };
}

async function showInterval(ctx: Context, t: bigint, fmtPrice: (p: bigint) => string) {
  const pool = { address: ctx.manifest.contracts.pool, abi: clearingPoolAbi } as const;
  const [state, times, schedule] = await Promise.all([
    ctx.publicClient.readContract({ ...pool, functionName: 'intervalOf', args: [t] }),
    ctx.publicClient.readContract({ ...pool, functionName: 'timesOf', args: [t] }),
    ctx.publicClient.getContractEvents({
      ...pool,
      eventName: 'CellScheduled',
      args: { interval: t },
      fromBlock: ctx.manifest.deploymentBlock,
    }),
  ]);
  const [gateClosure, deliveryStart, deliveryEnd, windowEnd] = times;
  const cells = schedule.map(({ args }) => ({
    cell: args.cell,
    side: sideName(args.side ?? 0),
    energyWh: args.energyWh,
  }));
  const lines = [
    `interval ${t}: ${state.cleared ? `cleared at ${fmtPrice(state.price)}, ${state.volumeWh} Wh` : 'not cleared'}, ${state.orderCount} orders`,
    `  gate closure ${gateClosure}, delivery ${deliveryStart}-${deliveryEnd}, readings until ${windowEnd} (Unix s)`,
    `  readings ${state.reportedCells} of ${state.scheduledCells} scheduled cells`,
    ...cells.map((c) => `  cell ${c.cell}: ${c.side} ${c.energyWh} Wh`),
  ];
  ctx.print(lines.join('\n'), {
    interval: t,
    cleared: state.cleared,
    price: state.price,
    volumeWh: state.volumeWh,
    orderCount: state.orderCount,
    scheduledCells: state.scheduledCells,
    reportedCells: state.reportedCells,
    gateClosure,
    deliveryStart,
    deliveryEnd,
    windowEnd,
    schedule: cells,
  });
}
