export { readConfigSources, sourcesFromObject, parseConfigFile, type ConfigSources, type Section } from "./source.ts";
export { resolveConfig, findPlaceholders, substitute, didYouMean, type ChainConfig, type ResolveOptions } from "./resolve.ts";
export * as schema from "./schema.ts";
