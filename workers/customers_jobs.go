package workers

// registerCustomers registers the customers:* handlers (placeholder until the
// customers family lands).
func registerCustomers(r registrar, d Deps) {}
