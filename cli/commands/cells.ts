import { type Address, parseEventLogs, zeroAddress } from 'viem';
import { z } from 'zod';
import { cellRegistryAbi, cellWalletsAbi } from '../../chain/abi/contracts.generated.js';
import { connect, connectionHelp, connectionOptions } from '../context.js';
import { cellStatusNames, cellTypeArg, cellTypeName, formatAmount } from '../format.js';
import type { Io } from '../io.js';
import { arg, parseOptions, parseSubcommand } from '../options.js';
import { tokenInfo } from '../token.js';

export const cellsHelp = `gridcell cells: power-cell avatars

Usage:
  gridcell cells register --type TYPE --max-import-w W --max-export-w W [--parent CELL]
                          [--agent ADDRESS] [--meter ADDRESS]... [--owner ADDRESS]
  gridcell cells show CELL
  gridcell cells set-agent CELL ADDRESS
  gridcell cells add-meter CELL ADDRESS
  gridcell cells remove-meter CELL ADDRESS
  gridcell cells transfer CELL TO-ADDRESS      change the cell's user (clears the agent)
  gridcell cells disconnect CELL               no new orders; open obligations still settle

TYPE: load-following-generator, stochastic-generator, prosumer, consumer-with-generation,
active-consumer, passive-consumer (IDEA Table 1). The owner defaults to the --key account.

${connectionHelp}`;

const registerSchema = z.object({
  type: cellTypeArg,
  'max-import-w': arg.uint.refine((w) => w < 2n ** 32n, 'expected at most 4294967295 W'),
  'max-export-w': arg.uint.refine((w) => w < 2n ** 32n, 'expected at most 4294967295 W'),
  parent: arg.cellId.optional(),
  agent: arg.address.optional(),
  meter: z.array(arg.address).default([]),
  owner: arg.address.optional(),
});

/** `gridcell cells ...` */
export async function cellsCommand(argv: string[], io: Io): Promise<void> {
  const parsed = parseSubcommand(
    argv,
    {
      ...connectionOptions,
      type: { type: 'string' },
      'max-import-w': { type: 'string' },
      'max-export-w': { type: 'string' },
      parent: { type: 'string' },
      agent: { type: 'string' },
      meter: { type: 'string', multiple: true },
      owner: { type: 'string' },
    },
    'cells',
    ['register', 'show', 'set-agent', 'add-meter', 'remove-meter', 'transfer', 'disconnect'],
    cellsHelp,
    io,
  );
  if (!parsed) return;
  const { values, action, rest } = parsed;
  const ctx = await connect(values, io);
  const registry = { address: ctx.manifest.contracts.registry, abi: cellRegistryAbi } as const;
  const cellAndAddress = () => parseOptions(z.tuple([arg.cellId, arg.address]), rest, 'cells');

  switch (action) {
    case 'register': {
      const o = parseOptions(registerSchema, values, 'cells');
      const owner: Address = o.owner ?? (await ctx.signer()).address;
      const receipt = await ctx.send({
        ...registry,
        functionName: 'connect',
        args: [
          owner,
          o.type,
          o.parent ?? 0n,
          Number(o['max-import-w']),
          Number(o['max-export-w']),
          o.agent ?? zeroAddress,
          o.meter,
        ],
      });
      const [event] = parseEventLogs({
        abi: cellRegistryAbi,
        logs: receipt.logs,
        eventName: 'CellConnected',
      });
      if (!event) throw new Error('connect succeeded without a CellConnected event');
      ctx.print(`registered cell ${event.args.cellId} (${cellTypeName(o.type)}) owned by ${owner}`, {
        cellId: event.args.cellId,
        owner,
        transaction: receipt.transactionHash,
      });
      return;
    }
    case 'show': {
      const [cellId] = parseOptions(z.tuple([arg.cellId]), rest, 'cells');
      const [cell, owner, parent, [available, locked], token] = await Promise.all([
        ctx.publicClient.readContract({ ...registry, functionName: 'cellOf', args: [cellId] }),
        ctx.publicClient.readContract({ ...registry, functionName: 'ownerOf', args: [cellId] }),
        ctx.publicClient.readContract({ ...registry, functionName: 'parentOf', args: [cellId] }),
        ctx.publicClient.readContract({
          address: ctx.manifest.contracts.wallets,
          abi: cellWalletsAbi,
          functionName: 'balanceOf',
          args: [cellId],
        }),
        tokenInfo(ctx.publicClient, ctx.manifest.contracts.token),
      ]);
      const fmt = (v: bigint) => formatAmount(v, token.decimals, token.symbol);
      ctx.print(
        [
          `cell ${cellId}: ${cellTypeName(cell.cellType)}, ${cellStatusNames[cell.status]}`,
          `  owner       ${owner}`,
          `  agent       ${cell.agent === zeroAddress ? '(none)' : cell.agent}`,
          `  parent      ${parent === 0n ? '(top level)' : `cell ${parent}`}`,
          `  limits      import ${cell.maxImportW} W, export ${cell.maxExportW} W`,
          `  wallet      ${fmt(available)} available, ${fmt(locked)} locked`,
        ].join('\n'),
        {
          cellId,
          type: cellTypeName(cell.cellType),
          status: cellStatusNames[cell.status],
          owner,
          agent: cell.agent,
          parent,
          maxImportW: cell.maxImportW,
          maxExportW: cell.maxExportW,
          available,
          locked,
        },
      );
      return;
    }
    case 'set-agent': {
      const [cellId, agent] = cellAndAddress();
      const r = await ctx.send({ ...registry, functionName: 'setAgent', args: [cellId, agent] });
      ctx.print(`cell ${cellId}: agent is now ${agent}`, { cellId, agent, transaction: r.transactionHash });
      return;
    }
    case 'add-meter':
    case 'remove-meter': {
      const [cellId, meter] = cellAndAddress();
      const functionName = action === 'add-meter' ? 'addMeter' : 'removeMeter';
      const r = await ctx.send({ ...registry, functionName, args: [cellId, meter] });
      ctx.print(`cell ${cellId}: meter ${meter} ${action === 'add-meter' ? 'added' : 'removed'}`, {
        cellId,
        meter,
        transaction: r.transactionHash,
      });
      return;
    }
    case 'transfer': {
      const [cellId, to] = cellAndAddress();
      const from = (await ctx.signer()).address;
      const r = await ctx.send({ ...registry, functionName: 'transferFrom', args: [from, to, cellId] });
      ctx.print(`cell ${cellId}: user changed from ${from} to ${to}; the agent key was cleared`, {
        cellId,
        from,
        to,
        transaction: r.transactionHash,
      });
      return;
    }
    case 'disconnect': {
      const [cellId] = parseOptions(z.tuple([arg.cellId]), rest, 'cells');
      const r = await ctx.send({ ...registry, functionName: 'disconnect', args: [cellId] });
      ctx.print(`cell ${cellId}: disconnected`, { cellId, transaction: r.transactionHash });
      return;
    }
  }
}
