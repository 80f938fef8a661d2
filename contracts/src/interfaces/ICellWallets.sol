// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title Cell wallets
/// @notice Per-cell balances of the deployment's settlement token, split into available and
/// locked (escrow). The cell's owner (the avatar's holder) deposits and withdraws. Markets
/// (the clearing pool, the debt channels) move money only through the operations below,
/// and money they hold between a payer and a payee sits in the market's own account here.
/// A market may record a debt a cell could not pay (ØNDER debt channels): while a cell owes,
/// its agent commits nothing new, its owner withdraws nothing, and every credit to the cell
/// (deposits, market payments) repays the debt first, creditors in the order their debts were
/// recorded. Repayments wait here until collected, so
/// `token.balanceOf(this) == sum(available + locked) + sum(marketBalance) + heldForCreditors`.
interface ICellWallets {
    /// @notice `amount` was deposited into `cellId`'s available balance by `from`.
    event Deposited(uint256 indexed cellId, address indexed from, uint256 amount);
    /// @notice The owner withdrew `amount` to `to`.
    event Withdrawn(uint256 indexed cellId, address indexed to, uint256 amount);
    /// @notice The owner set how much the agent may commit per UTC day.
    event DailyCapSet(uint256 indexed cellId, uint256 cap);
    /// @notice The admin authorised a market contract.
    event MarketAdded(address indexed market);
    /// @notice The admin gave up the right to add markets.
    event AdminRenounced(address indexed admin);

    /// @notice A market recorded that `debtor` owes `creditor` `amount`, of which `paidAtOnce`
    /// came out of the debtor's available balance and the rest is debt `debtId` (0 = none left).
    event DebtRecorded(
        uint256 indexed debtId, uint256 indexed debtor, uint256 indexed creditor, uint256 amount, uint256 paidAtOnce
    );
    /// @notice `amount` of the cell's debt was repaid; `outstanding` is what it still owes.
    event DebtRepaid(uint256 indexed cellId, uint256 amount, uint256 outstanding);
    /// @notice The creditor of debt `debtId` received `amount` of what was repaid.
    event DebtCollected(uint256 indexed debtId, uint256 indexed creditor, uint256 amount);

    /// @notice A debt: `debtor` owes `creditor` the range [start, end) of its cumulative
    /// recorded debt; repayments fill those ranges in order (first recorded, first repaid).
    struct Debt {
        uint256 debtor;
        uint256 creditor;
        uint128 start;
        uint128 end;
        uint128 collected;
    }

    error WalletUnknownCell(uint256 cellId);
    error WalletCellInDebt(uint256 cellId, uint256 outstanding);
    error WalletUnknownDebt(uint256 debtId);
    error WalletNotCellOwner(uint256 cellId, address caller);
    error WalletInsufficientBalance(uint256 cellId, uint256 available, uint256 needed);
    error WalletInsufficientLocked(uint256 cellId, uint256 locked, uint256 needed);
    error WalletDailyCapExceeded(uint256 cellId, uint256 cap, uint256 spentToday, uint256 amount);
    error WalletNotMarket(address caller);
    error WalletNotAdmin(address caller);
    error WalletMarketUnderfunded(address market, uint256 balance, uint256 needed);
    error WalletZeroAmount();
    error WalletAmountTooLarge(uint256 amount);

    /// @notice Deposits `amount` into a cell's wallet from the caller's token balance.
    /// Anyone may deposit into any cell (a gift cannot hurt the owner).
    function deposit(uint256 cellId, uint256 amount) external;

    /// @notice Deposits with an ERC-2612 permit, in one call: no separate approval.
    function depositWithPermit(uint256 cellId, uint256 amount, uint256 deadline, uint8 v, bytes32 r, bytes32 s) external;

    /// @notice Withdraws available money to `to`. Owner of the cell only.
    function withdraw(uint256 cellId, uint256 amount, address to) external;

    /// @notice Sets how much the agent may commit (lock for buying) per UTC day. Owner only.
    function setDailyCap(uint256 cellId, uint256 cap) external;

    /// @notice Available and locked balance of a cell.
    function balanceOf(uint256 cellId) external view returns (uint256 available, uint256 locked);

    /// @notice The agent's daily cap, what it committed today, and today's day index.
    function dailySpend(uint256 cellId) external view returns (uint256 cap, uint256 spentToday, uint256 day);

    /// @notice Money a market holds between payers and payees.
    function marketBalance(address market) external view returns (uint256);

    /// @notice Whether `market` may move money.
    function isMarket(address market) external view returns (bool);

    /// @notice Market: moves `amount` from available to locked on behalf of the cell's agent,
    /// counting it against the agent's daily cap. Refused while the cell owes.
    function lockForAgent(uint256 cellId, uint256 amount) external;

    /// @notice Market: settles an escrow. Takes `locked` out of the cell's locked balance,
    /// pays `paid` of it into the market's account and returns the rest to available.
    function settleLocked(uint256 cellId, uint256 locked, uint256 paid) external;

    /// @notice Market: pays `amount` from the market's account to the cell's available balance.
    /// The cell's debt, if any, is repaid from it first.
    function payFromMarket(uint256 cellId, uint256 amount) external;

    /// @notice Market: pays `amountA` to `cellA` and `amountB` to `cellB` from the market's
    /// account in one call, as two {payFromMarket} would (a debt channel's close: the seller's
    /// pay and the buyer's refund). Each cell's debt, if any, is repaid first from what it
    /// receives.
    function payTwoFromMarket(uint256 cellA, uint256 amountA, uint256 cellB, uint256 amountB) external;

    /// @notice Market: moves `amount` of the cell's available money into the market's account
    /// on behalf of the cell's agent (a channel's collateral), counting it against the agent's
    /// daily cap. Refused while the cell owes.
    function commitForAgent(uint256 cellId, uint256 amount) external;

    /// @notice Market: `debtor` owes `creditor` `amount` beyond what the market held for it.
    /// Its available balance pays at once; the rest becomes a debt.
    /// @return debtId The debt's id, or 0 if the available balance paid it all.
    function recordDebt(uint256 debtor, uint256 creditor, uint256 amount) external returns (uint256 debtId);

    /// @notice Repays the cell's debt from its available balance (money that came back from
    /// escrow while the cell owed). Anyone may call it.
    function repayDebt(uint256 cellId) external;

    /// @notice Pays debt `debtId`'s creditor what has been repaid of it so far. Anyone may call it.
    /// @return amount What the creditor received now.
    function collectDebt(uint256 debtId) external returns (uint256 amount);

    /// @notice What the cell owes in all.
    function debtOf(uint256 cellId) external view returns (uint256);

    /// @notice One recorded debt, and what of it can be collected now.
    function debtById(uint256 debtId) external view returns (Debt memory debt, uint256 collectable);

    /// @notice Repayments not yet collected by their creditors.
    function heldForCreditors() external view returns (uint256);
}
