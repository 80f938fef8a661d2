/** The GraphQL schema of the indexed data (docs/graphql.md). */
export const typeDefs = /* GraphQL */ `
"""
An unsigned integer as a decimal string: token amounts (base units), prices (base units
per kWh) and energies (Wh), exact at any size.
"""
scalar BigInt

enum Side {
  BUY
  SELL
}

enum OrderDirection {
  ASC
  DESC
}

type PageInfo {
  hasNextPage: Boolean!
  "Pass as \`after\` for the next page."
  endCursor: String
}

"A power cell's avatar as its registry events tell it."
type Cell {
  id: Int!
  owner: String!
  "IDEA cell type, 0-5 (chain/units CellType)."
  cellType: Int!
  parentId: Int!
  maxImportW: Int!
  maxExportW: Int!
  agent: String
  "connected, disconnected"
  status: String!
  connectedBlock: Int!
  updatedBlock: Int!
  meters: [String!]!
  wallet: Wallet
}

"A wallet's flows: what its events say (locking escrow emits none)."
type Wallet {
  cellId: Int!
  deposited: BigInt!
  withdrawn: BigInt!
  dailyCap: BigInt!
  poolPaid: BigInt!
  poolReceived: BigInt!
  "Escrow of buy orders in the pool not settled yet: the locked part of the wallet."
  locked: BigInt!
  "Debt outstanding."
  debt: BigInt!
  updatedBlock: Int!
  cell: Cell
}

type Order {
  interval: Int!
  cellId: Int!
  nonce: Int!
  side: Side!
  energyWh: BigInt!
  limitPrice: BigInt!
  expiry: BigInt!
  "open, cancelled"
  status: String!
  blockNumber: Int!
  txHash: String!
  cell: Cell
}

type Interval {
  interval: Int!
  "open (orders in), cleared, settling, settled (every scheduled cell settled)"
  status: String!
  ordersSubmitted: Int!
  ordersCancelled: Int!
  "Clearing price, base units per kWh; null until cleared."
  price: BigInt
  volumeWh: BigInt
  orderCount: Int
  scheduledCells: Int
  positionsSettled: Int!
  clearedBlock: Int
  updatedBlock: Int!
  schedules: [Schedule!]!
  settlements: [Settlement!]!
}

type Schedule {
  interval: Int!
  cellId: Int!
  side: Side!
  energyWh: BigInt!
  blockNumber: Int!
  cell: Cell
}

type Reading {
  interval: Int!
  cellId: Int!
  meter: String!
  seq: BigInt!
  importWh: BigInt!
  exportWh: BigInt!
  deliveredWh: BigInt!
  blockNumber: Int!
  txHash: String!
  cell: Cell
}

type Settlement {
  interval: Int!
  cellId: Int!
  side: Side!
  meteredWh: BigInt!
  "A buyer paid it, a seller received it."
  amount: BigInt!
  refund: BigInt!
  blockNumber: Int!
  txHash: String!
  cell: Cell
}

type Channel {
  id: String!
  buyerCell: Int!
  sellerCell: Int!
  sellerMeter: String!
  pricePerKWh: BigInt!
  maxWhPerInterval: BigInt!
  firstInterval: Int!
  lastInterval: Int!
  collateral: BigInt!
  "open, closing, closed"
  status: String!
  voucherSeq: Int!
  deliveredWh: BigInt!
  owedAmount: BigInt!
  paidAmount: BigInt!
  closingDeadline: BigInt
  endInterval: Int
  refunded: BigInt
  debt: BigInt
  debtId: Int
  openedBlock: Int!
  updatedBlock: Int!
  buyer: Cell
  seller: Cell
  vouchers: [Voucher!]!
}

"A voucher a channel accepted (redeemed, or presented at close)."
type Voucher {
  channelId: String!
  seq: Int!
  cumulativeWh: BigInt!
  cumulativeAmount: BigInt!
  paidNow: BigInt!
  blockNumber: Int!
  txHash: String!
}

type Debt {
  id: Int!
  debtor: Int!
  creditor: Int!
  amount: BigInt!
  paidAtOnce: BigInt!
  collected: BigInt!
  blockNumber: Int!
  debtorCell: Cell
  creditorCell: Cell
}

"""
The chain dropped the blocks above forkBlock (up to droppedThroughBlock): events a subscription
delivered from those blocks did not happen. The events of the new branch follow on the other
subscriptions.
"""
type ChainReorganization {
  "The last block kept."
  forkBlock: Int!
  "The highest block the indexer had indexed on the dropped branch."
  droppedThroughBlock: Int!
}

type IndexerStatus {
  indexedBlock: Int
  headBlock: Int
  finalizedBlock: Int
  "head - indexed, blocks"
  lagBlocks: Int
  ready: Boolean!
}

type CellEdge { cursor: String! node: Cell! }
type CellConnection { edges: [CellEdge!]! nodes: [Cell!]! pageInfo: PageInfo! }
type WalletEdge { cursor: String! node: Wallet! }
type WalletConnection { edges: [WalletEdge!]! nodes: [Wallet!]! pageInfo: PageInfo! }
type OrderEdge { cursor: String! node: Order! }
type OrderConnection { edges: [OrderEdge!]! nodes: [Order!]! pageInfo: PageInfo! }
type IntervalEdge { cursor: String! node: Interval! }
type IntervalConnection { edges: [IntervalEdge!]! nodes: [Interval!]! pageInfo: PageInfo! }
type ScheduleEdge { cursor: String! node: Schedule! }
type ScheduleConnection { edges: [ScheduleEdge!]! nodes: [Schedule!]! pageInfo: PageInfo! }
type ReadingEdge { cursor: String! node: Reading! }
type ReadingConnection { edges: [ReadingEdge!]! nodes: [Reading!]! pageInfo: PageInfo! }
type SettlementEdge { cursor: String! node: Settlement! }
type SettlementConnection { edges: [SettlementEdge!]! nodes: [Settlement!]! pageInfo: PageInfo! }
type ChannelEdge { cursor: String! node: Channel! }
type ChannelConnection { edges: [ChannelEdge!]! nodes: [Channel!]! pageInfo: PageInfo! }
type VoucherEdge { cursor: String! node: Voucher! }
type VoucherConnection { edges: [VoucherEdge!]! nodes: [Voucher!]! pageInfo: PageInfo! }
type DebtEdge { cursor: String! node: Debt! }
type DebtConnection { edges: [DebtEdge!]! nodes: [Debt!]! pageInfo: PageInfo! }

input CellFilter { owner: String agent: String cellType: Int status: String parentId: Int }
enum CellOrderField { ID CONNECTED_BLOCK UPDATED_BLOCK }
input CellOrder { field: CellOrderField! direction: OrderDirection }

input WalletFilter { cellId: Int }
enum WalletOrderField { CELL_ID UPDATED_BLOCK }
input WalletOrder { field: WalletOrderField! direction: OrderDirection }

input OrderFilter { interval: Int intervalGte: Int intervalLte: Int cellId: Int side: Side status: String }
enum OrderOrderField { INTERVAL BLOCK_NUMBER }
input OrderOrder { field: OrderOrderField! direction: OrderDirection }

input IntervalFilter { status: String intervalGte: Int intervalLte: Int }
enum IntervalOrderField { INTERVAL UPDATED_BLOCK }
input IntervalOrder { field: IntervalOrderField! direction: OrderDirection }

input ScheduleFilter { interval: Int intervalGte: Int intervalLte: Int cellId: Int side: Side }
enum ScheduleOrderField { INTERVAL BLOCK_NUMBER }
input ScheduleOrder { field: ScheduleOrderField! direction: OrderDirection }

input ReadingFilter { interval: Int intervalGte: Int intervalLte: Int cellId: Int meter: String }
enum ReadingOrderField { INTERVAL BLOCK_NUMBER }
input ReadingOrder { field: ReadingOrderField! direction: OrderDirection }

input SettlementFilter { interval: Int intervalGte: Int intervalLte: Int cellId: Int side: Side }
enum SettlementOrderField { INTERVAL BLOCK_NUMBER }
input SettlementOrder { field: SettlementOrderField! direction: OrderDirection }

input ChannelFilter { buyerCell: Int sellerCell: Int status: String }
enum ChannelOrderField { OPENED_BLOCK UPDATED_BLOCK }
input ChannelOrder { field: ChannelOrderField! direction: OrderDirection }

input VoucherFilter { channelId: String }
enum VoucherOrderField { SEQ BLOCK_NUMBER }
input VoucherOrder { field: VoucherOrderField! direction: OrderDirection }

input DebtFilter { debtor: Int creditor: Int }
enum DebtOrderField { ID BLOCK_NUMBER }
input DebtOrder { field: DebtOrderField! direction: OrderDirection }

type Query {
  cell(id: Int!): Cell
  cells(first: Int, after: String, where: CellFilter, orderBy: CellOrder): CellConnection!
  wallet(cellId: Int!): Wallet
  wallets(first: Int, after: String, where: WalletFilter, orderBy: WalletOrder): WalletConnection!
  orders(first: Int, after: String, where: OrderFilter, orderBy: OrderOrder): OrderConnection!
  interval(interval: Int!): Interval
  intervals(first: Int, after: String, where: IntervalFilter, orderBy: IntervalOrder): IntervalConnection!
  schedules(first: Int, after: String, where: ScheduleFilter, orderBy: ScheduleOrder): ScheduleConnection!
  readings(first: Int, after: String, where: ReadingFilter, orderBy: ReadingOrder): ReadingConnection!
  settlements(first: Int, after: String, where: SettlementFilter, orderBy: SettlementOrder): SettlementConnection!
  channel(id: String!): Channel
  channels(first: Int, after: String, where: ChannelFilter, orderBy: ChannelOrder): ChannelConnection!
  vouchers(first: Int, after: String, where: VoucherFilter, orderBy: VoucherOrder): VoucherConnection!
  debts(first: Int, after: String, where: DebtFilter, orderBy: DebtOrder): DebtConnection!
  indexerStatus: IndexerStatus!
}

type Subscription {
  "Each interval as it is cleared."
  intervalCleared: Interval!
  "Each position as it is settled."
  positionSettled: Settlement!
  "Each reorganisation the indexer rolled back: what the other subscriptions delivered above forkBlock is void."
  chainReorganized: ChainReorganization!
}
`;
