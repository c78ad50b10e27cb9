# The CustomResourceDefinitions (crds/*.yaml) and their reference (docs/crd-reference.md), generated from the zod
# schemas in operator/api. test/operator/crds-generated.test.ts fails when the committed files are out of date.
.PHONY: crds
crds: node_modules/.installed ## regenerate crds/*.yaml and docs/crd-reference.md from operator/api
	node scripts/gen-crds.ts
