"""Accounts, sessions and tokens: argon2id passwords, JWT access tokens, rotating refresh,
TOTP two-factor authentication, and sign-in with tokens of external identity
providers (Clerk, OIDC)."""

from ._audit import AUDIT_REASON_CHARS as AUDIT_REASON_CHARS
from ._audit import AuditAction as AuditAction
from ._audit import AuditLog as AuditLog
from ._audit import client_address as client_address
from ._audit import event_json as event_json
from ._audit import resolve_actor as resolve_actor
from ._errors import AuthError as AuthError
from ._errors import InvalidCode as InvalidCode
from ._errors import InvalidCredentials as InvalidCredentials
from ._errors import InvalidInput as InvalidInput
from ._errors import InvalidToken as InvalidToken
from ._errors import RefreshReused as RefreshReused
from ._errors import TooManyAttempts as TooManyAttempts
from ._errors import UsernameTaken as UsernameTaken
from ._errors import WrongPassword as WrongPassword
from ._jwks import JwksCache as JwksCache
from ._jwks import ProviderUnavailable as ProviderUnavailable
from ._oidc import ExternalClaims as ExternalClaims
from ._oidc import ExternalSignIn as ExternalSignIn
from ._oidc import ProviderTokens as ProviderTokens
from ._passwords import Passwords as Passwords
from ._service import DISPLAY_NAME_CHARS as DISPLAY_NAME_CHARS
from ._service import MAX_USER_AGENT as MAX_USER_AGENT
from ._service import PASSWORD_CHARS as PASSWORD_CHARS
from ._service import USERNAME_CHARS as USERNAME_CHARS
from ._service import USERNAME_PATTERN as USERNAME_PATTERN
from ._service import AuthService as AuthService
from ._service import Challenge as Challenge
from ._service import Device as Device
from ._service import Principal as Principal
from ._service import Tokens as Tokens
from ._sessioncache import CachedSession as CachedSession
from ._sessioncache import LocalSessionCache as LocalSessionCache
from ._sessioncache import RedisSessionCache as RedisSessionCache
from ._sessioncache import SessionCache as SessionCache
from ._tokens import AccessClaims as AccessClaims
from ._tokens import TokenSigner as TokenSigner
from ._tokens import new_signing_key as new_signing_key
from ._totp import TOTP_DIGITS as TOTP_DIGITS
from ._totp import code_at as code_at
from ._totp import time_step as time_step
from ._twofactor import Enrolment as Enrolment
from ._twofactor import TwoFactor as TwoFactor
