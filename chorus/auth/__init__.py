"""Accounts, sessions and tokens: argon2id passwords, JWT access tokens, rotating refresh,
and sign-in with tokens of external identity providers (Clerk, OIDC)."""

from ._errors import AuthError as AuthError
from ._errors import InvalidCredentials as InvalidCredentials
from ._errors import InvalidInput as InvalidInput
from ._errors import InvalidToken as InvalidToken
from ._errors import RefreshReused as RefreshReused
from ._errors import UsernameTaken as UsernameTaken
from ._jwks import JwksCache as JwksCache
from ._jwks import ProviderUnavailable as ProviderUnavailable
from ._oidc import ExternalClaims as ExternalClaims
from ._oidc import ExternalSignIn as ExternalSignIn
from ._oidc import ProviderTokens as ProviderTokens
from ._passwords import Passwords as Passwords
from ._service import DISPLAY_NAME_CHARS as DISPLAY_NAME_CHARS
from ._service import PASSWORD_CHARS as PASSWORD_CHARS
from ._service import USERNAME_CHARS as USERNAME_CHARS
from ._service import USERNAME_PATTERN as USERNAME_PATTERN
from ._service import AuthService as AuthService
from ._service import Principal as Principal
from ._service import Tokens as Tokens
from ._tokens import AccessClaims as AccessClaims
from ._tokens import TokenSigner as TokenSigner
from ._tokens import new_signing_key as new_signing_key
