import { z } from 'zod';
import { cellWalletsAbi, devnetTokenAbi } from '../../chain/abi/contracts.generated.js';
import { signPermit } from '../../chain/typed-data/index.js';
import { type Context, connect, connectionHelp, connectionOptions } from '../context.js';
import { formatAmount } from '../format.js';
import type { Io } from '../io.js';
import { arg, parseOptions, parseSubcommand } from '../options.js';
import { type TokenInfo, tokenInfo } from '../token.js';

export const walletHelp = `gridcell wallet: a cell's wallet of the settlement token

Usage:
  gridcell wallet balance CELL
  gridcell wallet deposit CELL AMOUNT       signs an ERC-2612 permit and deposits in one call
  gridcell wallet withdraw CELL AMOUNT [--to ADDRESS]     owner only; to the --key account by default
  gridcell wallet set-cap CELL AMOUNT|unlimited           what the agent may commit per UTC day

AMOUNT is in whole tokens, e.g. 12.5.

${connectionHelp}`;

/** `gridcell wallet ...` */
export async function walletCommand(argv: string[], io: Io): Promise<void> {
  const parsed = parseSubcommand(
    argv,
    { ...connectionOptions, to: { type: 'string' } },
    'wallet',
    ['balance', 'deposit', 'withdraw', 'set-cap'],
    walletHelp,
    io,
  );
  if (!parsed) return;
  const { values, action, rest } = parsed;
  const ctx = await connect(values, io);
  const token = await tokenInfo(ctx.publicClient, ctx.manifest.contracts.token);
  const wallets = { address: ctx.manifest.contracts.wallets, abi: cellWalletsAbi } as const;
  const fmt = (v: bigint) => formatAmount(v, token.decimals, token.symbol);
  const cellAndAmount = () =>
    parseOptions(z.tuple([arg.cellId, arg.tokenAmount(token.decimals)]), rest, 'wallet');

  switch (action) {
    case 'balance': {
      const [cellId] = parseOptions(z.tuple([arg.cellId]), rest, 'wallet');
      const [[available, locked], [cap, spentToday]] = await Promise.all([
        ctx.publicClient.readContract({ ...wallets, functionName: 'balanceOf', args: [cellId] }),
        ctx.publicClient.readContract({ ...wallets, functionName: 'dailySpend', args: [cellId] }),
      ]);
      ctx.print(
        `cell ${cellId}: ${fmt(available)} available, ${fmt(locked)} locked; agent cap ${capText(cap, fmt)}, ${fmt(spentToday)} committed today`,
        { cellId, available, locked, dailyCap: cap, spentToday },
      );
      return;
    }
    case 'deposit': {
      const [cellId, amount] = cellAndAmount();
      const receipt = await depositWithPermit(ctx, token, cellId, amount);
      ctx.print(`cell ${cellId}: deposited ${fmt(amount)}`, {
        cellId,
        amount,
        transaction: receipt.transactionHash,
      });
      return;
    }
    case 'withdraw': {
      const [cellId, amount] = cellAndAmount();
      const to = values.to
        ? parseOptions(z.object({ to: arg.address }), values, 'wallet').to
        : (await ctx.signer()).address;
      const r = await ctx.send({ ...wallets, functionName: 'withdraw', args: [cellId, amount, to] });
      ctx.print(`cell ${cellId}: withdrew ${fmt(amount)} to ${to}`, {
        cellId,
        amount,
        to,
        transaction: r.transactionHash,
      });
      return;
    }
    case 'set-cap': {
      const [cellId, raw] = parseOptions(z.tuple([arg.cellId, z.string()]), rest, 'wallet');
      const cap =
        raw === 'unlimited'
          ? 2n ** 96n - 1n
          : parseOptions(z.tuple([arg.tokenAmount(token.decimals)]), [raw], 'wallet')[0];
      const r = await ctx.send({ ...wallets, functionName: 'setDailyCap', args: [cellId, cap] });
      ctx.print(`cell ${cellId}: the agent may commit ${capText(cap, fmt)} per day`, {
        cellId,
        dailyCap: cap,
        transaction: r.transactionHash,
      });
      return;
    }
  }
}

function capText(cap: bigint, fmt: (v: bigint) => string): string {
  return cap >= 2n ** 96n - 1n ? 'unlimited' : fmt(cap);
}

/** Signs an ERC-2612 permit for the wallets (domain from the token's ERC-5267 eip712Domain). */
async function depositWithPermit(ctx: Context, token: TokenInfo, cellId: bigint, amount: bigint) {
  const owner = await ctx.signer();
  const [domainInfo, nonce, head] = await Promise.all([
    ctx.publicClient.readContract({
      address: token.address,
      abi: devnetTokenAbi,
      functionName: 'eip712Domain',
    }),
    ctx.publicClient.readContract({
      address: token.address,
      abi: devnetTokenAbi,
      functionName: 'nonces',
      args: [owner.address],
    }),
    ctx.publicClient.getBlock(),
  ]);
  const [, name, version, chainId, verifyingContract] = domainInfo;
  const deadline = head.timestamp + 3600n;
  const { v, r, s } = await signPermit(
    owner,
    { name, version, chainId, verifyingContract },
    { owner: owner.address, spender: ctx.manifest.contracts.wallets, value: amount, nonce, deadline },
  );
  return ctx.send({
    address: ctx.manifest.contracts.wallets,
    abi: cellWalletsAbi,
    functionName: 'depositWithPermit',
    args: [cellId, amount, deadline, v, r, s],
  });
}
