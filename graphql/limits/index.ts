// 'graphql/index.js', not 'graphql': the package has no "exports" map, so Node loads its CommonJS
// build while bundler-style resolvers (vitest) pick index.mjs; two copies break `instanceof`.
// The explicit file is the one graphql-yoga gets too.
/**
 * Query limits as GraphQL validation rules: a maximum depth and a maximum estimated cost,
 * checked before anything runs.
 */
import {
  type ASTVisitor,
  type FragmentDefinitionNode,
  GraphQLError,
  GraphQLList,
  type GraphQLNamedType,
  GraphQLObjectType,
  getNamedType,
  getNullableType,
  isObjectType,
  Kind,
  type SelectionSetNode,
  type ValidationContext,
} from 'graphql/index.js';

type Fragments = Record<string, FragmentDefinitionNode>;

function fragmentsOf(context: ValidationContext): Fragments {
  const out: Fragments = {};
  for (const d of context.getDocument().definitions)
    if (d.kind === Kind.FRAGMENT_DEFINITION) out[d.name.value] = d;
  return out;
}

function depthOf(
  selectionSet: SelectionSetNode | undefined,
  fragments: Fragments,
  seen: Set<string>,
): number {
  if (!selectionSet) return 0;
  let max = 0;
  for (const s of selectionSet.selections) {
    let d = 0;
    if (s.kind === Kind.FIELD) {
      d = s.name.value.startsWith('__')
        ? 0
        : s.selectionSet
          ? 1 + depthOf(s.selectionSet, fragments, seen)
          : 0;
    } else if (s.kind === Kind.INLINE_FRAGMENT) {
      d = depthOf(s.selectionSet, fragments, seen);
    } else {
      const f = fragments[s.name.value];
      if (f && !seen.has(f.name.value))
        d = depthOf(f.selectionSet, fragments, new Set([...seen, f.name.value]));
    }
    if (d > max) max = d;
  }
  return max;
}

/**
 * Rejects operations nested deeper than `maxDepth` object levels
 * (`{ cells { nodes { wallet { cell { id } } } } }` has depth 4).
 */
export function depthLimitRule(maxDepth: number) {
  return (context: ValidationContext): ASTVisitor => ({
    OperationDefinition(node) {
      const depth = depthOf(node.selectionSet, fragmentsOf(context), new Set());
      if (depth > maxDepth) {
        context.reportError(
          new GraphQLError(`query depth ${depth} exceeds the maximum ${maxDepth}`, {
            nodes: [node],
            extensions: { code: 'QUERY_TOO_DEEP' },
          }),
        );
      }
    },
  });
}

export interface CostLimit {
  maxCost: number;
  /** Items assumed for a list with no `first` argument, or `first` given as a variable. */
  assumedListSize: number;
}

/**
 * Estimates what an operation reads: every object field costs 1 per parent item; a field
 * with `first: N` multiplies its children by N (a variable counts as `assumedListSize`, as
 * does a plain list). Rejects operations above `maxCost`.
 */
export function costLimitRule(limit: CostLimit) {
  return (context: ValidationContext): ASTVisitor => ({
    OperationDefinition(node) {
      const schema = context.getSchema();
      const root =
        node.operation === 'query'
          ? schema.getQueryType()
          : node.operation === 'subscription'
            ? schema.getSubscriptionType()
            : schema.getMutationType();
      if (!root) return;
      const fragments = fragmentsOf(context);
      const cost = (set: SelectionSetNode | undefined, type: GraphQLNamedType, items: number): number => {
        if (!set || !(type instanceof GraphQLObjectType)) return 0;
        let total = 0;
        for (const s of set.selections) {
          if (s.kind === Kind.INLINE_FRAGMENT) {
            total += cost(s.selectionSet, type, items);
            continue;
          }
          if (s.kind === Kind.FRAGMENT_SPREAD) {
            const f = fragments[s.name.value];
            if (f) total += cost(f.selectionSet, type, items);
            continue;
          }
          const field = type.getFields()[s.name.value];
          if (!field) continue;
          const named = getNamedType(field.type);
          if (!isObjectType(named)) continue;
          let children = items;
          const first = s.arguments?.find((a) => a.name.value === 'first');
          if (first) {
            children =
              items * (first.value.kind === Kind.INT ? Number(first.value.value) : limit.assumedListSize);
          } else if (
            getNullableType(field.type) instanceof GraphQLList &&
            !type.name.endsWith('Connection')
          ) {
            children = items * limit.assumedListSize;
          }
          total += items + cost(s.selectionSet, named, children);
        }
        return total;
      };
      const total = cost(node.selectionSet, root, 1);
      if (total > limit.maxCost) {
        context.reportError(
          new GraphQLError(
            `query cost ${total} exceeds the maximum ${limit.maxCost} (ask for fewer items per page or fewer nested lists)`,
            { nodes: [node], extensions: { code: 'QUERY_TOO_COSTLY', cost: total } },
          ),
        );
      }
    },
  });
}
