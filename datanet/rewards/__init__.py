"""Rewards: settle an epoch's pool over contributors (data share + usage share), publish a
cumulative Merkle root on-chain, claim with a proof. See README "Rewards"."""
