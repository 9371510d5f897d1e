package jobs

// campaignSpecs lists the campaign:* kinds.
func campaignSpecs() []Spec { return nil }
