package diagnose

// allRules run in this order: a rule that explains a goroutine or a site
// claims it, and the rules after it leave it alone, so one bug gives one
// finding (a deadlocked goroutine is not also reported as a leak, a
// spawn storm's waiting nodes are not also a leak).
var allRules = []*rule{
	deadlockRule,
	explosionRule,
	waitGroupRule,
	leakRule,
	lockHeldRule,
	contentionRule,
	blockedLoopRule,
	starvationRule,
	busyPollRule,
	spinRule,
	longRunRule,
	growthRule,
	threadRule,
	outlivedRule,
	// Last: a suspicion is what no rule with evidence explained.
	suspectRule,
}
