// The allocation oracles measure process-wide allocations: tests of this assembly run one at a time.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
