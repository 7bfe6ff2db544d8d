"""SQLAlchemy models, one aggregate per module. Models hold data and rules about it; they do no I/O."""

from webapp.models.account import AccountGrant, EmailAccount
from webapp.models.delivery import Delivery, Webhook
from webapp.models.fetchrun import FetchRun
from webapp.models.folder import FolderState
from webapp.models.log import ErrorLog
from webapp.models.message import Attachment, Blob, EmailMessage
from webapp.models.oauth import OAuthProvider
from webapp.models.session import UserSession
from webapp.models.setting import AppSetting
from webapp.models.subscription import Subscription
from webapp.models.user import User

__all__ = [
    "AccountGrant",
    "AppSetting",
    "Attachment",
    "Blob",
    "Delivery",
    "EmailAccount",
    "EmailMessage",
    "ErrorLog",
    "FetchRun",
    "FolderState",
    "OAuthProvider",
    "Subscription",
    "User",
    "UserSession",
    "Webhook",
]
