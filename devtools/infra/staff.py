"""The staff console's Cognito user pool, app client and role groups."""

from __future__ import annotations

from typing import Any

from devtools.infra.cfn import pascal_case
from devtools.infra.stages import Stage

#: The staff console's roles (Cognito groups), lowest first.
STAFF_ROLES = ("consulta", "tesoreria", "administrador")


def staff_directory(stage_: Stage) -> dict[str, Any]:
    """The staff user pool: MFA (TOTP) required, 12+ character passwords without composition
    rules (NIST SP 800-63B), accounts made by an administrador only, one group per role, and the
    app client the console signs in with (``USER_PASSWORD_AUTH``, no secret, no user existence
    errors). Kept when the stack is deleted: it holds the staff identities."""
    protection = "ACTIVE" if stage_.is_production else "INACTIVE"
    resources: dict[str, Any] = {
        "StaffUserPool": {
            "Type": "AWS::Cognito::UserPool", "DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain",
            "Properties": {
                "UserPoolName": f"{stage_.resource_prefix}-staff",
                "MfaConfiguration": "ON", "EnabledMfas": ["SOFTWARE_TOKEN_MFA"],
                "DeletionProtection": protection,
                "AdminCreateUserConfig": {"AllowAdminCreateUserOnly": True},
                "UsernameConfiguration": {"CaseSensitive": False},
                "AccountRecoverySetting": {"RecoveryMechanisms": [{"Name": "admin_only", "Priority": 1}]},
                "Policies": {"PasswordPolicy": {
                    "MinimumLength": 12, "RequireLowercase": False, "RequireUppercase": False,
                    "RequireNumbers": False, "RequireSymbols": False, "TemporaryPasswordValidityDays": 3}},
                "UserPoolTags": {"app": stage_.app_name, "stage": stage_.name, "component": "staff"},
            },
        },
        "StaffUserPoolClient": {
            "Type": "AWS::Cognito::UserPoolClient",
            "Properties": {
                "UserPoolId": {"Ref": "StaffUserPool"}, "ClientName": "console", "GenerateSecret": False,
                "ExplicitAuthFlows": ["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
                "PreventUserExistenceErrors": "ENABLED", "EnableTokenRevocation": True,
                "AccessTokenValidity": 60, "IdTokenValidity": 60, "RefreshTokenValidity": 480,
                "TokenValidityUnits": {"AccessToken": "minutes", "IdToken": "minutes",
                                       "RefreshToken": "minutes"},
            },
        },
    }
    for rank, role in enumerate(STAFF_ROLES, start=1):
        resources[f"StaffGroup{pascal_case(role)}"] = {
            "Type": "AWS::Cognito::UserPoolGroup",
            "Properties": {"UserPoolId": {"Ref": "StaffUserPool"}, "GroupName": role, "Precedence": 10 - rank,
                           "Description": f"Sucursal Virtual: rol {role} de la consola del personal"},
        }
    return resources
