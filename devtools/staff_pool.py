"""The staff user pool in moto for ``make run`` and the tests (AWS gets it from the template).

The pool requires MFA (TOTP), passwords of 12+ characters without composition rules (NIST SP
800-63B), and the app client signs in with ``USER_PASSWORD_AUTH``. ``create_demo_staff`` adds one
user per role with a temporary password: the first sign-in asks for a new one and the TOTP set-up.
moto checks TOTP codes only when ``MOTO_COGNITO_IDP_USER_POOL_ENABLE_TOTP=true``, and then against
its one fixed secret (``MOTO_TOTP_SECRET``); Cognito checks the real ones.
"""

from __future__ import annotations

import os
from typing import Any

from chalicelib.adapters.cognito import ROLES  # imports only config: safe before the environment

POOL_NAME = "sucursal-virtual-local-staff"
DEFAULT_DEMO_PASSWORD = "Clave-Temporal-Personal-2026"  # demo only, printed  # noqa: S105  # nosec B105
MOTO_TOTP_SECRET = "asdfasdfasdf"  # moto's fixed COGNITO_TOTP_MFA_SECRET  # noqa: S105  # nosec B105
MOTO_TOTP_ENV = {"MOTO_COGNITO_IDP_USER_POOL_ENABLE_TOTP": "true"}


def _client(region: str) -> Any:
    import boto3

    return boto3.client("cognito-idp", region_name=region)


def create_pool(region: str) -> tuple[str, str]:
    """A pool like the template's, its groups and its app client: ``(pool id, client id)``."""
    cognito = _client(region)
    pool = cognito.create_user_pool(
        PoolName=POOL_NAME, MfaConfiguration="OFF",
        Policies={"PasswordPolicy": {"MinimumLength": 12, "RequireUppercase": False,
                                     "RequireLowercase": False, "RequireNumbers": False,
                                     "RequireSymbols": False, "TemporaryPasswordValidityDays": 7}},
        AdminCreateUserConfig={"AllowAdminCreateUserOnly": True},
        UsernameConfiguration={"CaseSensitive": False})["UserPool"]
    pool_id = pool["Id"]
    cognito.set_user_pool_mfa_config(UserPoolId=pool_id, MfaConfiguration="ON",
                                     SoftwareTokenMfaConfiguration={"Enabled": True})
    for role in ROLES:
        cognito.create_group(UserPoolId=pool_id, GroupName=role)
    client = cognito.create_user_pool_client(
        UserPoolId=pool_id, ClientName="console", GenerateSecret=False,
        ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
        PreventUserExistenceErrors="ENABLED")["UserPoolClient"]
    return pool_id, client["ClientId"]


def create_staff_user(region: str, pool_id: str, username: str, role: str, password: str) -> None:
    cognito = _client(region)
    cognito.admin_create_user(UserPoolId=pool_id, Username=username, TemporaryPassword=password,
                              MessageAction="SUPPRESS",
                              UserAttributes=[{"Name": "email", "Value": f"{username}@coopejemplo.example"},
                                              {"Name": "email_verified", "Value": "true"}])
    cognito.admin_add_user_to_group(UserPoolId=pool_id, Username=username, GroupName=role)


def create_demo_staff(region: str, pool_id: str, password: str | None = None) -> str:
    """One user per role, named after it, with ``password`` as the temporary password."""
    password = password or os.environ.get("DEMO_STAFF_PASSWORD") or DEFAULT_DEMO_PASSWORD
    for role in ROLES:
        create_staff_user(region, pool_id, role, role, password)
    return password
