"""pyrstmdb: a durable state machine database, wire-compatible with rstmdb.

Embedded use::

    from pyrstmdb import Database

    db = Database()            # in memory; Database("dir") is durable
"""

from pyrstmdb.database import Database
from pyrstmdb.errors import (
    AuthFailed,
    BadRequest,
    ClientConnectionError,
    Conflict,
    ErrorCode,
    GuardFailed,
    InstanceExists,
    InstanceNotFound,
    InternalError,
    InvalidTransition,
    MachineNotFound,
    MachineVersionExists,
    MachineVersionLimitExceeded,
    NotFound,
    RateLimited,
    RstmdbError,
    Unauthorized,
    UnsupportedProtocol,
    WalIoError,
)
from pyrstmdb.results import (
    ApplyEventResult,
    BatchItem,
    BatchResult,
    CompactResult,
    CreateInstanceResult,
    DeleteInstanceResult,
    FlushAllResult,
    GetInstanceResult,
    GetMachineResult,
    HistoryResult,
    InstanceSummary,
    IoStats,
    ListInstancesResult,
    ListMachinesResult,
    MachineVersions,
    PutMachineResult,
    SnapshotResult,
    WalReadResult,
    WalRecord,
    WalStatsResult,
)
from pyrstmdb.storage.policy import FsyncPolicy

__version__ = "0.1.0"

__all__ = [
    "ApplyEventResult",
    "AuthFailed",
    "BadRequest",
    "BatchItem",
    "BatchResult",
    "ClientConnectionError",
    "CompactResult",
    "Conflict",
    "CreateInstanceResult",
    "Database",
    "DeleteInstanceResult",
    "ErrorCode",
    "FlushAllResult",
    "FsyncPolicy",
    "GetInstanceResult",
    "GetMachineResult",
    "GuardFailed",
    "HistoryResult",
    "InstanceExists",
    "InstanceNotFound",
    "InstanceSummary",
    "InternalError",
    "InvalidTransition",
    "IoStats",
    "ListInstancesResult",
    "ListMachinesResult",
    "MachineNotFound",
    "MachineVersionExists",
    "MachineVersionLimitExceeded",
    "MachineVersions",
    "NotFound",
    "PutMachineResult",
    "RateLimited",
    "RstmdbError",
    "SnapshotResult",
    "Unauthorized",
    "UnsupportedProtocol",
    "WalIoError",
    "WalReadResult",
    "WalRecord",
    "WalStatsResult",
    "__version__",
]
