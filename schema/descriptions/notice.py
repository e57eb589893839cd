"""Descriptions of what a change does to stored fleets, and of withdrawals announced for a later
day (keys: `schema.descriptions`)."""

from __future__ import annotations

WITHDRAWAL_SCHEDULED_ON = (
    "The day (UTC) its announced withdrawal takes effect; null when none is scheduled. Until "
    "then plans may use it."
)
EFFECTIVE_ON = (
    "The day (UTC) the withdrawal takes effect, at 00:00 UTC: today when absent. A later day "
    "announces it now (a *_WITHDRAWAL_SCHEDULED change); a day gone is BAD_USER_INPUT."
)

DESCRIPTIONS: dict[str, str] = {
    "Firmware.withdrawalScheduledOn": WITHDRAWAL_SCHEDULED_ON,
    "UpgradePathway.withdrawalScheduledOn": WITHDRAWAL_SCHEDULED_ON,
    "WithdrawFirmwareInput.effectiveOn": EFFECTIVE_ON,
    "WithdrawUpgradePathwayInput.effectiveOn": EFFECTIVE_ON,
    "ChangeKind.FIRMWARE_WITHDRAWAL_SCHEDULED": "A firmware's withdrawal announced for a later "
    "day; FIRMWARE_WITHDRAWN follows when it takes effect.",
    "ChangeKind.DIGEST": "Webhooks only, never a change of its own: a webhook registered with it "
    "gets its Party's `FleetDigest` once a day, from the configured UTC hour, since its previous "
    "digest (nothing when nothing touched the Party's fleet). No subscription event has it.",
    "ChangeKind.PATHWAY_WITHDRAWAL_SCHEDULED": "A pathway's withdrawal announced for a later "
    "day; PATHWAY_WITHDRAWN follows when it takes effect.",
    "UpgradePlan.withdrawalsScheduled": "Announced withdrawals of its steps, the firmware they "
    "enter, or its target: the plan is valid until the first takes effect.",
    "ScheduledWithdrawal": "A withdrawal announced for a later day: of a firmware or a pathway.",
    "ScheduledWithdrawal.effectiveOn": "The day (UTC) it takes effect, at 00:00.",
    "ScheduledWithdrawal.firmware": "The firmware to be withdrawn; null when it is a pathway's.",
    "ScheduledWithdrawal.pathway": "The pathway to be withdrawn; null when it is a firmware's.",
    "Subscription.cplChanges(onlyMyFleet)": "Only changes with an impact on your own stored "
    "fleet (a Supplier's); for any other caller, none.",
    "CplChange.fleetImpact": "What the change does to your own stored fleet; null when it "
    "touches none of it (or you store none). Never another Party's.",
    "FleetImpact": "What a change does to your stored fleet, in meters.",
    "FleetImpact.affectedMeters": "Meters whose plan changes, or whose firmware, target or a "
    "step of whose plan is the firmware or pathway the change names.",
    "FleetImpact.newlyBlockedMeters": "Meters not blocked before the change and blocked after "
    "it (`fleetPlan`'s `summary.blocked`).",
    "FleetImpact.newlyUpgradableMeters": "Meters not upgradable before the change and "
    "upgradable after it (`fleetPlan`'s `summary.upgradable`).",
}
