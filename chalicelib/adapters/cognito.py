"""The staff directory: an Amazon Cognito user pool through boto3 (moto's ``cognito-idp`` locally).

Only this module talks to Cognito. Its answers are plain values; Cognito's refusals become
:class:`CognitoRefusal` with Cognito's error code, which the staff sign-in service words in Spanish.
Sign-in uses the app client's ``USER_PASSWORD_AUTH`` flow (the password goes to Cognito over TLS,
the app never stores it); the console's admin pages use the pool's admin API with the function's
IAM role.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from chalicelib.config import Settings

if TYPE_CHECKING:
    from mypy_boto3_cognito_idp import CognitoIdentityProviderClient

ROLES = ("consulta", "tesoreria", "administrador")


class CognitoRefusal(Exception):
    """Cognito refused a call: ``code`` is its error code (NotAuthorizedException, ...)."""

    def __init__(self, code: str, message: str = "") -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class AuthStep:
    """What Cognito answered: a challenge to answer next, or tokens."""

    challenge: str | None
    session: str | None
    access_token: str | None
    parameters: dict[str, Any]


@dataclass(frozen=True)
class StaffUser:
    username: str
    email: str
    enabled: bool
    status: str
    created_at: datetime | None
    groups: tuple[str, ...] = ()


@lru_cache(maxsize=4)
def _client(region: str) -> CognitoIdentityProviderClient:
    import boto3  # lazy: only the staff console needs it

    return boto3.client("cognito-idp", region_name=region)


class StaffDirectory:
    """The user pool of one stage (``STAFF_USER_POOL_ID``, ``STAFF_CLIENT_ID``)."""

    def __init__(self, settings: Settings) -> None:
        self.pool_id = settings.staff_user_pool_id
        self.client_id = settings.staff_client_id
        self.region = settings.region

    def _call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        from botocore.exceptions import ClientError

        if not self.pool_id or not self.client_id:
            raise CognitoRefusal("NotConfigured", "STAFF_USER_POOL_ID / STAFF_CLIENT_ID are not set")
        try:
            answer: dict[str, Any] = getattr(_client(self.region), operation)(**kwargs)
            return answer
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise CognitoRefusal(str(error.get("Code", "Unknown")), str(error.get("Message", ""))) from exc

    @staticmethod
    def _step(answer: dict[str, Any]) -> AuthStep:
        result = answer.get("AuthenticationResult") or {}
        return AuthStep(challenge=answer.get("ChallengeName"), session=answer.get("Session"),
                        access_token=result.get("AccessToken"),
                        parameters=dict(answer.get("ChallengeParameters") or {}))

    # --- signing in ------------------------------------------------------------------------------
    def start(self, username: str, password: str) -> AuthStep:
        return self._step(self._call("initiate_auth", ClientId=self.client_id,
                                     AuthFlow="USER_PASSWORD_AUTH",
                                     AuthParameters={"USERNAME": username, "PASSWORD": password}))

    def answer(self, challenge: str, session: str, responses: dict[str, str]) -> AuthStep:
        return self._step(self._call("respond_to_auth_challenge", ClientId=self.client_id,
                                     ChallengeName=challenge, Session=session,
                                     ChallengeResponses=responses))

    def associate_token(self, *, session: str | None = None,
                        access_token: str | None = None) -> tuple[str, str | None]:
        """A new TOTP secret for the user: ``(secret, next session)``."""
        kwargs: dict[str, Any] = {"Session": session} if session else {"AccessToken": access_token}
        answer = self._call("associate_software_token", **kwargs)
        return str(answer["SecretCode"]), answer.get("Session")

    def verify_token(self, code: str, *, session: str | None = None,
                     access_token: str | None = None) -> str | None:
        """Check the first code of a new TOTP secret; the next session (challenge path)."""
        kwargs: dict[str, Any] = {"Session": session} if session else {"AccessToken": access_token}
        answer = self._call("verify_software_token", UserCode=code,
                            FriendlyDeviceName="Sucursal Virtual", **kwargs)
        if answer.get("Status") != "SUCCESS":
            raise CognitoRefusal("CodeMismatchException", "verification did not succeed")
        return answer.get("Session")

    def prefer_totp(self, access_token: str) -> None:
        self._call("set_user_mfa_preference", AccessToken=access_token,
                   SoftwareTokenMfaSettings={"Enabled": True, "PreferredMfa": True})

    def groups_of(self, username: str) -> tuple[str, ...]:
        answer = self._call("admin_list_groups_for_user", UserPoolId=self.pool_id, Username=username)
        return tuple(sorted(g["GroupName"] for g in answer.get("Groups", []) if g["GroupName"] in ROLES))

    # --- managing staff users (administrador) -----------------------------------------------------
    def list_users(self) -> list[StaffUser]:
        users: list[StaffUser] = []
        members: dict[str, set[str]] = {}
        for role in ROLES:
            token: str | None = None
            while True:
                page = self._call("list_users_in_group", UserPoolId=self.pool_id, GroupName=role,
                                  Limit=60, **({"NextToken": token} if token else {}))
                for user in page.get("Users", []):
                    members.setdefault(user["Username"], set()).add(role)
                token = page.get("NextToken")
                if not token:
                    break
        token = None
        while True:
            page = self._call("list_users", UserPoolId=self.pool_id, Limit=60,
                              **({"PaginationToken": token} if token else {}))
            for user in page.get("Users", []):
                attrs = {a["Name"]: a["Value"] for a in user.get("Attributes", [])}
                users.append(StaffUser(username=user["Username"], email=attrs.get("email", ""),
                                       enabled=bool(user.get("Enabled", True)),
                                       status=str(user.get("UserStatus", "")),
                                       created_at=user.get("UserCreateDate"),
                                       groups=tuple(sorted(members.get(user["Username"], ())))))
            token = page.get("PaginationToken")
            if not token:
                break
        return sorted(users, key=lambda u: u.username)

    def create_user(self, username: str, email: str, temporary_password: str | None = None) -> None:
        kwargs: dict[str, Any] = {"UserPoolId": self.pool_id, "Username": username,
                                  "UserAttributes": [{"Name": "email", "Value": email},
                                                     {"Name": "email_verified", "Value": "true"}],
                                  "DesiredDeliveryMediums": ["EMAIL"]}
        if temporary_password:
            kwargs["TemporaryPassword"] = temporary_password
            kwargs["MessageAction"] = "SUPPRESS"
        self._call("admin_create_user", **kwargs)

    def set_group(self, username: str, role: str) -> None:
        """Exactly one role: add ``role``, then leave the others."""
        self._call("admin_add_user_to_group", UserPoolId=self.pool_id, Username=username,
                   GroupName=role)
        for other in ROLES:
            if other != role:
                self._call("admin_remove_user_from_group", UserPoolId=self.pool_id,
                           Username=username, GroupName=other)

    def set_enabled(self, username: str, enabled: bool) -> None:
        operation = "admin_enable_user" if enabled else "admin_disable_user"
        self._call(operation, UserPoolId=self.pool_id, Username=username)
        if not enabled:
            self._call("admin_user_global_sign_out", UserPoolId=self.pool_id, Username=username)
