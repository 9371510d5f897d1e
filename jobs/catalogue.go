package jobs

// catalogue lists every job kind. Each family keeps its specs in its own
// file; adding a family means adding its list here.
func catalogue() []Spec {
	var all []Spec
	for _, family := range [][]Spec{customerSpecs(), smsSpecs(), campaignSpecs()} {
		all = append(all, family...)
	}
	return all
}
