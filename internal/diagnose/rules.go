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
	// The rules that name one goroutine's own fault (a poller, a spinning
	// select, a run that others wait on) before the one that sees many
	// CPU-bound goroutines together: in a mix, a spinner is one of the
	// hogs that starve the rest, and starvation naming it would hide the
	// spinner's own finding.
	busyPollRule,
	spinRule,
	longRunRule,
	starvationRule,
	growthRule,
	threadRule,
	outlivedRule,
	// Last: a suspicion is what no rule with evidence explained.
	suspectRule,
}
